module github.com/tickwire/tickwire/collector

go 1.26

require github.com/tickwire/tickwire/shared v0.0.0

replace github.com/tickwire/tickwire/shared => ../shared
