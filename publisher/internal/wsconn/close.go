package wsconn

// CloseCode is a WebSocket close code the server sends, as docs/protocol.md
// documents them.
type CloseCode int

// The close codes of the protocol.
const (
	// CloseNormal: normal closure; the client should stop.
	CloseNormal CloseCode = 1000
	// CloseGoingAway: the replica is shutting down; reconnect and resume.
	CloseGoingAway CloseCode = 1001
	// CloseTooBig: a client frame over the size limit; fix the client.
	CloseTooBig CloseCode = 1009
	// CloseProtocol: repeated protocol violations; fix the client.
	CloseProtocol CloseCode = 4000
	// CloseUnauthorized: no valid token, or it expired; get a new one.
	CloseUnauthorized CloseCode = 4001
	// CloseSlowConsumer: the client fell too far behind; resume with since.
	CloseSlowConsumer CloseCode = 4008
	// CloseTooManyConns: too many connections for this user; close another.
	CloseTooManyConns CloseCode = 4009
	// CloseRateLimited: too many client frames for too long; back off.
	CloseRateLimited CloseCode = 4029

	// closeGone is internal: the peer is gone, send nothing more.
	closeGone CloseCode = -1
)

// String names the code for logs and metric labels.
func (c CloseCode) String() string {
	switch c {
	case CloseNormal:
		return "normal"
	case CloseGoingAway:
		return "going_away"
	case CloseTooBig:
		return "too_big"
	case CloseProtocol:
		return "protocol"
	case CloseUnauthorized:
		return "unauthorized"
	case CloseSlowConsumer:
		return "slow_consumer"
	case CloseTooManyConns:
		return "too_many_connections"
	case CloseRateLimited:
		return "rate_limited"
	case closeGone:
		return "client_gone"
	default:
		return "other"
	}
}
