module github.com/tickwire/tickwire/testkit

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/tickwire/tickwire/shared v0.0.0
)

replace github.com/tickwire/tickwire/shared => ../shared
