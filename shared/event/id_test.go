package event_test

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

func TestParseID(t *testing.T) {
	maxU := strconv.FormatUint(math.MaxUint64, 10)
	tests := []struct {
		in   string
		want event.ID
		str  string
	}{
		{"1764288000123-0", event.ID{Ms: 1764288000123, Seq: 0}, "1764288000123-0"},
		{"1764288000123-7", event.ID{Ms: 1764288000123, Seq: 7}, "1764288000123-7"},
		{"0-0", event.ID{}, "0-0"},
		{"5", event.ID{Ms: 5}, "5-0"},
		{"007-01", event.ID{Ms: 7, Seq: 1}, "7-1"},
		{maxU + "-" + maxU, event.ID{Ms: math.MaxUint64, Seq: math.MaxUint64}, maxU + "-" + maxU},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := event.ParseID(tt.in)
			if err != nil {
				t.Fatalf("ParseID(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseID(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
			if again, err := event.ParseID(got.String()); err != nil || again != got {
				t.Errorf("re-parse of %q = %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseIDInvalid(t *testing.T) {
	maxU := strconv.FormatUint(math.MaxUint64, 10)
	for _, in := range []string{
		"", "-", "-1", "1-", "a-1", "1-a", "1-2-3", "+1-2", "1-+2", "-1-2", " 1-2", "1-2 ",
		"1_000-0", "0x10-0", "1.5-0", "*", "$", ">", "+", maxU + "0-0", "0-" + maxU + "0",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := event.ParseID(in)
			if err == nil {
				t.Fatalf("ParseID(%q) = %+v, want an error", in, got)
			}
			if !errors.Is(err, event.ErrInvalidID) {
				t.Errorf("error %v does not wrap ErrInvalidID", err)
			}
		})
	}
}

func TestIDLess(t *testing.T) {
	ordered := []event.ID{{}, {Ms: 0, Seq: 1}, {Ms: 1}, {Ms: 1, Seq: 1}, {Ms: 1, Seq: math.MaxUint64}, {Ms: 2}, {Ms: math.MaxUint64, Seq: math.MaxUint64}}
	for i, a := range ordered {
		for j, b := range ordered {
			if got, want := a.Less(b), i < j; got != want {
				t.Errorf("%v.Less(%v) = %v, want %v", a, b, got, want)
			}
		}
	}
}

func TestIDIsZero(t *testing.T) {
	if !(event.ID{}).IsZero() {
		t.Error("zero ID is not IsZero")
	}
	if (event.ID{Seq: 1}).IsZero() || (event.ID{Ms: 1}).IsZero() {
		t.Error("non-zero ID is IsZero")
	}
}
