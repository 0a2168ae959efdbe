package streams

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis names the class of an error with the first word of its reply
// ("NOGROUP No such key..."). Every match on a Redis error in this package
// (and in its callers) goes through code, so that there is one way to do it:
// errors.As on go-redis's error type, then the class word. A Go error that
// merely reads like a Redis reply never matches.

// ErrorCode returns the class word of a Redis error reply in err's chain
// ("NOGROUP", "WRONGTYPE", "OOM", ...), or "" if err carries none.
func ErrorCode(err error) string {
	var rerr redis.Error
	if err == nil || !errors.As(err, &rerr) || errors.Is(err, redis.Nil) {
		return ""
	}
	msg := rerr.Error()
	if i := strings.IndexByte(msg, ' '); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// IsBusyGroup reports whether err is Redis's answer to creating a group
// that already exists.
func IsBusyGroup(err error) bool { return ErrorCode(err) == "BUSYGROUP" }

// IsNoGroup reports whether err says the group or its stream does not exist
// (Redis lost its data, or an operator destroyed the group).
func IsNoGroup(err error) bool { return ErrorCode(err) == "NOGROUP" }

// IsWrongType reports whether err says a key holds another type than the
// command needs (a key written by hand).
func IsWrongType(err error) bool { return ErrorCode(err) == "WRONGTYPE" }

// IsOOM reports whether err says Redis refused a write because its memory
// is at maxmemory (and its eviction policy frees nothing for streams).
func IsOOM(err error) bool { return ErrorCode(err) == "OOM" }

// IsNoScript reports whether err says Redis does not have a script cached
// (it restarted, or SCRIPT FLUSH ran).
func IsNoScript(err error) bool { return ErrorCode(err) == "NOSCRIPT" }

// IsUnblocked reports whether err says a blocked read was ended by Redis
// because its stream or group went away (Redis 7: "UNBLOCKED ...").
func IsUnblocked(err error) bool { return ErrorCode(err) == "UNBLOCKED" }
