// Node peer for the oshirase benchmark: the textbook Node stack for GraphQL
// subscriptions — graphql-ws on ws, graphql-redis-subscriptions on ioredis —
// with oshirase's schema and one Redis channel per user. It is a yardstick,
// not a product: no auth, no origin checks.
//
//   PORT (default 8092), REDIS_URL (default redis://127.0.0.1:6379)
//
// WebSocket: /graphql (graphql-transport-ws). Publish: POST /graphql with
// sendNotification, or PUBLISH {"id","text","timestamp"} JSON straight to
// "nodepeer:notif:<user>" (the load tool's NodeCodec).
'use strict';

const http = require('node:http');
const { WebSocketServer } = require('ws');
const { useServer } = require('graphql-ws/use/ws');
const { buildSchema, parse, validate, execute } = require('graphql');
const { RedisPubSub } = require('graphql-redis-subscriptions');
const Redis = require('ioredis');

const port = Number(process.env.PORT || 8092);
const redisURL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const url = redisURL.includes('://') ? redisURL : `redis://${redisURL}`;

const pubsub = new RedisPubSub({
  publisher: new Redis(url),
  subscriber: new Redis(url),
});

const channel = (user) => `nodepeer:notif:${user}`;
const live = new Map(); // user -> live subscriptions on this instance

const schema = buildSchema(`
  type Notification { id: ID! text: String! timestamp: Int! }
  type SendResult { receivedUsers: Int! }
  type Query { ok: Boolean! }
  type Mutation { sendNotification(to: String!, text: String!): SendResult! }
  type Subscription { onNotificationReceived(userName: String!): Notification! }
`);

let seq = 0;
const rootValue = {
  ok: () => true,
  sendNotification: async ({ to, text }) => {
    const now = Date.now();
    await pubsub.publish(channel(to), { id: `${now.toString(36)}-${seq++}`, text, timestamp: Math.floor(now / 1000) });
    return { receivedUsers: live.get(to) || 0 };
  },
};

// The subscription field: one async iterator per subscription over the
// user's channel (graphql-redis-subscriptions shares one Redis SUBSCRIBE per
// channel); each event is the notice itself.
const field = schema.getSubscriptionType().getFields().onNotificationReceived;
field.subscribe = (_src, { userName }) => {
  live.set(userName, (live.get(userName) || 0) + 1);
  const it = pubsub.asyncIterator(channel(userName));
  const ret = it.return.bind(it);
  let done = false;
  it.return = (...args) => {
    if (!done) {
      done = true;
      const n = (live.get(userName) || 1) - 1;
      if (n === 0) live.delete(userName); else live.set(userName, n);
    }
    return ret(...args);
  };
  return it;
};
field.resolve = (payload) => payload;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/readyz') {
    res.writeHead(200).end('ok');
    return;
  }
  if (req.method !== 'POST' || (req.url !== '/graphql' && req.url !== '/query')) {
    res.writeHead(404).end();
    return;
  }
  try {
    const body = JSON.parse(await readBody(req));
    const document = parse(body.query);
    const errors = validate(schema, document);
    const result = errors.length
      ? { errors }
      : await execute({ schema, document, rootValue, variableValues: body.variables });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
  } catch (err) {
    res.writeHead(400, { 'content-type': 'application/json' })
      .end(JSON.stringify({ errors: [{ message: String(err.message || err) }] }));
  }
});

const wss = new WebSocketServer({ server, path: '/graphql' });
useServer({ schema }, wss);

server.listen(port, () => console.error(`node peer on :${port}, redis ${url}`));

const stop = () => {
  wss.close();
  server.close();
  pubsub.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
