package monitor

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// readLag returns the group's lag on feed: the entries it has not read.
// A missing group reads as 0 (the reader re-creates it; nothing to judge
// yet). When Redis cannot count the lag (XINFO answers nil, e.g. after a
// group was re-created behind the tail), it is 1 if any entry follows the
// group's last delivered id: enough to judge a stall, and a lower bound.
func (m *Monitor) readLag(ctx context.Context, feed string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	groups, err := m.cfg.Client.XInfoGroups(ctx, feed).Result()
	if err != nil {
		if isNoKey(err) {
			return 0, nil // the feed does not exist yet
		}
		return 0, fmt.Errorf("xinfo groups %s: %w", feed, err)
	}
	for _, g := range groups {
		if g.Name != m.cfg.Group {
			continue
		}
		if g.Lag >= 0 {
			return g.Lag, nil
		}
		next, err := m.cfg.Client.XRangeN(ctx, feed, "("+g.LastDeliveredID, "+", 1).Result()
		if err != nil {
			return 0, fmt.Errorf("xrange %s: %w", feed, err)
		}
		return int64(len(next)), nil
	}
	return 0, nil
}

// isNoKey matches XINFO's answer for a stream that does not exist.
func isNoKey(err error) bool {
	rerr, ok := err.(redis.Error)
	return ok && rerr.Error() == "ERR no such key"
}
