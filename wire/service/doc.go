// Package service holds what pub and sub both need to run as services: the
// environment reader, REDIS_URL parsing, logging, metrics and the HTTP
// server's lifecycle. Nothing here knows about notices.
package service
