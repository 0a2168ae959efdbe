package streams

import (
	"hash/fnv"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

func TestNewLayout(t *testing.T) {
	tests := []struct {
		prefix string
		shards int
		ok     bool
	}{
		{"md", 1, true},
		{"md", 1024, true},
		{"x:y", 3, true},
		{"", 1, false},
		{"md", 0, false},
		{"md", -1, false},
		{"md", 1025, false},
		{"m{d}", 1, false}, // a hash tag of its own
		{"md}", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+"/"+strconv.Itoa(tt.shards), func(t *testing.T) {
			l, err := NewLayout(tt.prefix, tt.shards)
			if (err == nil) != tt.ok {
				t.Fatalf("NewLayout(%q, %d) error = %v, want ok %v", tt.prefix, tt.shards, err, tt.ok)
			}
			if tt.ok && (l.Prefix != tt.prefix || l.Shards != tt.shards) {
				t.Errorf("NewLayout = %+v", l)
			}
		})
	}
}

func TestLayoutKeyNames(t *testing.T) {
	l, err := NewLayout("md", 1)
	if err != nil {
		t.Fatal(err)
	}
	aapl := event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}
	tests := []struct{ name, got, want string }{
		{"feed", l.Feed(0), "md:{0}:feed"},
		{"history", l.History(aapl), "md:{0}:hist:trade:AAPL"},
		{"history with a slash", l.History(event.Channel{Kind: event.KindQuote, Symbol: "EUR/USD"}), "md:{0}:hist:quote:EUR/USD"},
		{"channels", l.Channels(0), "md:{0}:channels"},
		{"replicas", l.Replicas(), "md:replicas"},
		{"leader", l.Leader(), "md:collector:leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	if got, want := l.Feeds(), []string{"md:{0}:feed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Feeds() = %q, want %q", got, want)
	}

	l8, _ := NewLayout("tw", 8)
	if got, want := l8.Feeds(), []string{"tw:{0}:feed", "tw:{1}:feed", "tw:{2}:feed", "tw:{3}:feed", "tw:{4}:feed", "tw:{5}:feed", "tw:{6}:feed", "tw:{7}:feed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Feeds() = %q, want %q", got, want)
	}
	if got := l8.Channels(5); got != "tw:{5}:channels" {
		t.Errorf("Channels(5) = %q", got)
	}
	if got := l8.Replicas(); got != "tw:replicas" {
		t.Errorf("Replicas() = %q", got)
	}
}

func fnv32a(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// hashTag returns what Redis Cluster hashes for key: the text between the
// first '{' and the next '}'.
func hashTag(t *testing.T, key string) string {
	t.Helper()
	open := strings.IndexByte(key, '{')
	if open < 0 {
		t.Fatalf("key %q has no hash tag", key)
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		t.Fatalf("key %q has no closed hash tag", key)
	}
	return key[open+1 : open+1+end]
}

func TestShardIsFNV32a(t *testing.T) {
	symbols := []string{"AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "BRK.B", "BTC-USD", "EUR/USD", "X", "ABCDEFGHIJKLMNOP"}
	for _, shards := range []int{1, 2, 3, 7, 16, 1024} {
		l, err := NewLayout("md", shards)
		if err != nil {
			t.Fatal(err)
		}
		for _, sym := range symbols {
			want := int(fnv32a(sym) % uint32(shards))
			if got := l.Shard(sym); got != want {
				t.Errorf("Shards %d: Shard(%q) = %d, want fnv32a %% shards = %d", shards, sym, got, want)
			}
			for kind := event.Kind(0); kind < event.NumKinds; kind++ {
				key := l.History(event.Channel{Kind: kind, Symbol: sym})
				if tag := hashTag(t, key); tag != strconv.Itoa(want) {
					t.Errorf("History key %q has hash tag %q, want the shard %d", key, tag, want)
				}
				if !strings.HasPrefix(key, "md:{"+strconv.Itoa(want)+"}:hist:"+kind.String()+":"+sym) {
					t.Errorf("History key %q", key)
				}
			}
			if tag := hashTag(t, l.Feed(want)); tag != strconv.Itoa(want) {
				t.Errorf("Feed key tag %q", tag)
			}
		}
	}
	// A fixed vector of the FNV reference, so the formula cannot drift in
	// hash/fnv and here at once: fnv32a("a") = 0xe40c292c.
	if fnv32a("a") != 0xe40c292c {
		t.Fatalf("hash/fnv is not FNV-1a 32")
	}
	l, _ := NewLayout("md", 1<<10)
	if got := l.Shard("a"); got != int(0xe40c292c%1024) {
		t.Errorf("Shard(a) with 1024 shards = %d, want %d", got, 0xe40c292c%1024)
	}
}

func TestShardSpreadsSymbols(t *testing.T) {
	l, _ := NewLayout("md", 3)
	seen := map[int]bool{}
	for i := 0; i < 100; i++ {
		seen[l.Shard("S"+strconv.Itoa(i))] = true
	}
	if len(seen) != 3 {
		t.Errorf("100 symbols landed on shards %v of 3", seen)
	}
}

func TestGroupName(t *testing.T) {
	if got := GroupName("pub-1"); got != "publisher:pub-1" {
		t.Errorf("GroupName = %q", got)
	}
}
