// Package wire is the contract between pub and sub: how a notice is named on
// Redis (channels and the keys beside them) and how it is encoded. Publisher
// and subscriber must agree on every byte of it, so it is defined here once
// and nowhere else.
//
// Every key a notice touches — its Pub/Sub channel, the live-subscription
// counts, its history and the history's meta — carries the same Redis
// Cluster hash tag, so all of them land in one hash slot.
package wire
