package event

// The data objects of each kind, as docs/protocol.md lists their fields. Sources
// build these and marshal them once; the publisher never decodes them.

// Trade is the data of a trade event.
type Trade struct {
	Price float64 `json:"price"`
	Size  float64 `json:"size"`
}

// Quote is the data of a quote event.
type Quote struct {
	Bid     float64 `json:"bid"`
	BidSize float64 `json:"bid_size"`
	Ask     float64 `json:"ask"`
	AskSize float64 `json:"ask_size"`
}

// Bar is the data of a bar event; Start and End are Unix ms.
type Bar struct {
	Open   float64 `json:"open"`
	High   float64 `json:"high"`
	Low    float64 `json:"low"`
	Close  float64 `json:"close"`
	Volume float64 `json:"volume"`
	Start  int64   `json:"start"`
	End    int64   `json:"end"`
}
