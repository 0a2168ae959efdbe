package hub

import (
	"iter"
	"slices"

	"github.com/tickwire/tickwire/shared/event"
)

// fewChannels is how many channels a Set keeps in a slice before it
// moves them to a map.
const fewChannels = 8

// Set is a set of channels that is small while it holds few: most
// connections subscribe to a handful of channels, and a map of one
// channel takes ten times the memory of a slice of one. The zero Set is
// empty and ready to use. It is not safe for concurrent use.
type Set struct {
	few  []event.Channel // up to fewChannels, when many is nil
	many map[event.Channel]struct{}
}

// Has reports whether c is in the set.
func (s *Set) Has(c event.Channel) bool {
	if s.many != nil {
		_, ok := s.many[c]
		return ok
	}
	return slices.Contains(s.few, c)
}

// Add adds c; it reports false if c was there already.
func (s *Set) Add(c event.Channel) bool {
	if s.Has(c) {
		return false
	}
	switch {
	case s.many != nil:
		s.many[c] = struct{}{}
	case len(s.few) < fewChannels:
		s.few = append(s.few, c)
	default:
		s.many = make(map[event.Channel]struct{}, 2*fewChannels)
		for _, x := range s.few {
			s.many[x] = struct{}{}
		}
		s.many[c] = struct{}{}
		s.few = nil
	}
	return true
}

// Delete removes c; it reports false if c was not there. An emptied set
// keeps no memory.
func (s *Set) Delete(c event.Channel) bool {
	if s.many != nil {
		if _, ok := s.many[c]; !ok {
			return false
		}
		delete(s.many, c)
		if len(s.many) == 0 {
			s.many = nil
		}
		return true
	}
	i := slices.Index(s.few, c)
	if i < 0 {
		return false
	}
	s.few = slices.Delete(s.few, i, i+1)
	if len(s.few) == 0 {
		s.few = nil
	}
	return true
}

// Len returns the number of channels in the set.
func (s *Set) Len() int {
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}

// All yields the channels of the set, in no particular order. The set
// must not change meanwhile.
func (s *Set) All() iter.Seq[event.Channel] {
	return func(yield func(event.Channel) bool) {
		if s.many != nil {
			for c := range s.many {
				if !yield(c) {
					return
				}
			}
			return
		}
		for _, c := range s.few {
			if !yield(c) {
				return
			}
		}
	}
}
