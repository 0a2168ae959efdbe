package event

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidID is returned (wrapped) for a malformed stream entry id.
var ErrInvalidID = errors.New("invalid event id")

// ID is a Redis stream entry id, MS-SEQ. The zero ID is smaller than every
// id Redis hands out.
type ID struct {
	Ms  uint64
	Seq uint64
}

// ParseID parses "MS-SEQ" (or "MS", meaning sequence 0).
func ParseID(s string) (ID, error) {
	msStr, seqStr, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msStr, 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("%w %q: want MS-SEQ", ErrInvalidID, clip(s))
	}
	var seq uint64
	if hasSeq {
		if seq, err = strconv.ParseUint(seqStr, 10, 64); err != nil {
			return ID{}, fmt.Errorf("%w %q: want MS-SEQ", ErrInvalidID, clip(s))
		}
	}
	return ID{Ms: ms, Seq: seq}, nil
}

// String returns the id as Redis writes it.
func (id ID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// Less reports whether id sorts before other.
func (id ID) Less(other ID) bool {
	return id.Ms < other.Ms || (id.Ms == other.Ms && id.Seq < other.Seq)
}
