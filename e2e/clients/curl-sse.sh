#!/usr/bin/env bash
# Plain SSE with curl: notices to a user as "next" events, with keep-alive
# comments (": ping") while nothing happens. Ctrl-C ends the subscription.
#   ./curl-sse.sh [sub-url] [user]
set -euo pipefail
url="${1:-http://localhost:8081/graphql}"
user="${2:-alice}"
exec curl --no-buffer --silent --show-error --fail \
  -H 'Content-Type: application/json' \
  -H 'Accept: text/event-stream' \
  --data "{\"query\":\"subscription(\$u:String!){onNotificationReceived(userName:\$u){id text timestamp scope}}\",\"variables\":{\"u\":\"$user\"}}" \
  "$url"
