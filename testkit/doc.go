// Package testkit is the home of helpers that tests of several modules
// share, and only tests: nothing outside a _test.go file imports it, so the
// services never link it (and shared/ never gains gorilla/websocket).
//
//   - logbuf: a goroutine-safe log sink to read while handlers write.
//   - tape: one client's events per channel, checked for order as they come.
//   - wsclient: a WebSocket protocol client with read deadlines.
//   - golden: the events the replay fixture files must produce.
//   - redisfix: a layout and a client of a test's Redis, and stream reads.
//   - metricsdoc: a process's /metrics against docs/metrics.md.
//
// The private Redis stays in shared/redistest.
package testkit
