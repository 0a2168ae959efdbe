package obs

import (
	"context"
	"fmt"
	"log/slog"
)

// RedisLogger routes go-redis's internal messages (one per failed dial, and
// more) to the process log at debug level: tickwire reports an outage once,
// at warn level, where it is handled. Install it with redis.SetLogger, which
// is process-wide, like the log itself.
type RedisLogger struct{ Log *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.Log.Enabled(ctx, slog.LevelDebug) {
		l.Log.DebugContext(ctx, "go-redis", "detail", fmt.Sprintf(format, v...))
	}
}
