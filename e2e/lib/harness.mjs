// Starts the real system for a test file: redis-server, bin/pub and bin/sub,
// each on a free loopback port, and tears all of it down again, also when a
// test fails or the process dies. Everything here is black-box: the services
// are only reached over HTTP/WebSocket, as a user or a backend would.

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';

const here = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(here, '..');
export const BIN_DIR = path.resolve(process.env.E2E_BIN_DIR ?? path.join(E2E_DIR, '..', 'bin'));
export const ARTIFACTS_DIR = path.join(E2E_DIR, 'artifacts');

// Probe notices are ordinary notices that tests send to find out how many
// subscriptions are live. Clients under test must ignore them.
export const PROBE_PREFIX = '__e2e_probe__';
export const isProbe = (text) => typeof text === 'string' && text.startsWith(PROBE_PREFIX);

const SEND_MUTATION = `mutation Send($to: String!, $text: String!) {
  sendNotification(to: $to, text: $text) { receivedUsers id }
}`;

// sub's drain switched off (see startStack).
const NO_DRAIN = { DRAIN_DELAY: '0s', DRAIN_WINDOW: '0s' };

// Every child of this process, so that an exit for any reason kills them.
const children = new Set();
function killAllNow() {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { killAllNow(); process.exit(128 + (signal === 'SIGINT' ? 2 : 15)); });
}

// Ports for the servers come from below the kernel's ephemeral range: a port
// that listen(0) hands out can be taken a moment later by any outgoing
// connection (ours to Redis, a browser's, a fetch), and the Go servers, which
// bind every address, would then fail with "address already in use".
const handedOut = new Set();
function ephemeralLow() {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low > 11_000) return low;
  } catch { /* not Linux */ }
  return 32_768;
}
const PORT_RANGE = [10_000, ephemeralLow() - 1];

function canBind(port, host) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err) => resolve(err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL' ? null : false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A TCP port, free on every address a moment ago, outside the ephemeral range. */
export async function freePort() {
  const [low, high] = PORT_RANGE;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    const any6 = await canBind(port, '::'); // dual-stack: covers 0.0.0.0 too
    const ok = any6 === null ? await canBind(port, '0.0.0.0') : any6;
    if (ok) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${low}-${high}`);
}

/** Polls fn until it returns a truthy value; throws describe() on timeout. */
export async function waitUntil(fn, { timeout = 10_000, interval = 25, maxInterval = 250, describe = () => 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let wait = interval;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${describe()}`);
    await delay(wait);
    wait = Math.min(maxInterval, wait * 2);
  }
}

/** One child process with its output kept in a file and a short in-memory tail. */
class Service {
  constructor(name, cmd, args, env, logDir) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.env = env;
    this.logPath = path.join(logDir, `${name}.log`);
    this.tail = [];
    this.unexpectedExit = null;
    this.restarts = 0;
  }

  start() {
    const log = createWriteStream(this.logPath, { flags: 'a' });
    log.write(`--- start #${this.restarts} ${new Date().toISOString()} ${this.cmd} ${this.args.join(' ')}\n`);
    const child = spawn(this.cmd, this.args, {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.stopping = false;
    children.add(child);
    if (process.env.E2E_PIDDIR && child.pid) {
      writeFileSync(path.join(process.env.E2E_PIDDIR, String(child.pid)), `${this.name}\n`);
    }
    const onData = (chunk) => {
      log.write(chunk);
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        this.tail.push(line);
        if (this.tail.length > 60) this.tail.shift();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        children.delete(child);
        if (process.env.E2E_PIDDIR && child.pid) {
          rmSync(path.join(process.env.E2E_PIDDIR, String(child.pid)), { force: true });
        }
        log.end(`--- exit code=${code} signal=${signal}\n`);
        if (!this.stopping) this.unexpectedExit = { code, signal };
        this.exitStatus = { code, signal };
        resolve({ code, signal });
      });
    });
    child.on('error', (err) => {
      this.unexpectedExit = { error: err.message };
    });
  }

  get running() {
    return this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL if it has not gone within graceMs. */
  async stop(graceMs = 8_000) {
    if (!this.child) return null;
    this.stopping = true;
    if (!this.running) return this.exitStatus;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }

  /** SIGKILL, as a crash: no drain, nothing cleaned up. */
  async kill() {
    if (!this.child) return null;
    this.stopping = true;
    if (this.running) this.child.kill('SIGKILL');
    return this.exited;
  }

  logTail(lines = 20) {
    return this.tail.slice(-lines).map((l) => `    [${this.name}] ${l}`).join('\n');
  }
}

/**
 * Starts redis-server, pub and sub. Options:
 *   name     — used for the log folder under artifacts/logs/ (default: pid)
 *   pubEnv   — extra environment for pub
 *   subEnv   — extra environment for sub (e.g. ALLOWED_ORIGINS, JWT keys)
 *   pubAuthorization — Authorization header for the stack's own sends
 *              (AUTH_MODE=jwt: "Bearer <API key or publisher token>")
 */
export async function startStack({ name = `stack-${process.pid}`, pubEnv = {}, subEnv = {}, pubAuthorization } = {}) {
  const logDir = path.join(ARTIFACTS_DIR, 'logs', name);
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });

  const stack = new Stack(logDir);
  stack.pubAuthorization = pubAuthorization;
  stack.subEnv = subEnv;
  try {
    await stack.startRedis();
    const [pubPort, subPort] = [await freePort(), await freePort()];
    const redisUrl = `redis://127.0.0.1:${stack.redisPort}`;
    stack.redisUrl = redisUrl;
    stack.pub = new Service('pub', path.join(BIN_DIR, 'pub'), [], { PORT: String(pubPort), REDIS_URL: redisUrl, ...pubEnv }, logDir);
    // COUNT_TTL=10m puts sub's periodic count refresh (every COUNT_TTL/3)
    // far beyond any wait here, so waitForSubscribers sees counts written
    // when a subscription starts or ends, never the refresh covering for them.
    // DRAIN_DELAY/DRAIN_WINDOW 0s: SIGTERM closes every connection at once,
    // unless a test asks for a drain.
    stack.sub = new Service('sub', path.join(BIN_DIR, 'sub'), [], { PORT: String(subPort), REDIS_URL: redisUrl, COUNT_TTL: '10m', ...NO_DRAIN, ...subEnv }, logDir);
    stack.pubUrl = `http://127.0.0.1:${pubPort}`;
    stack.subUrl = `http://127.0.0.1:${subPort}`;
    stack.subWsUrl = `ws://127.0.0.1:${subPort}/graphql`;
    stack.pub.start();
    stack.sub.start();
    await Promise.all([stack.waitReady(stack.pub, stack.pubUrl), stack.waitReady(stack.sub, stack.subUrl)]);
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

class Stack {
  constructor(logDir) {
    this.logDir = logDir;
    this.probeSeq = 0;
  }

  async startRedis() {
    this.redisPort = await freePort();
    this.redis = new Service('redis', 'redis-server', [
      '--port', String(this.redisPort), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--protected-mode', 'no',
    ], {}, this.logDir);
    this.redis.start();
    await waitUntil(async () => {
      if (this.redis.unexpectedExit) throw new Error(`redis-server exited: ${JSON.stringify(this.redis.unexpectedExit)}\n${this.redis.logTail()}`);
      return redisPing(this.redisPort);
    }, { describe: () => `redis-server on port ${this.redisPort}` });
  }

  async waitReady(service, baseUrl, timeout = 15_000) {
    await waitUntil(async () => {
      if (service.unexpectedExit) {
        throw new Error(`${service.name} exited before it was ready: ${JSON.stringify(service.unexpectedExit)}\n${service.logTail()}`);
      }
      try {
        const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
        return res.status === 200;
      } catch {
        return false;
      }
    }, { timeout, describe: () => `${service.name} ${baseUrl}/readyz to answer 200\n${service.logTail()}` });
  }

  /** Sends a notice through pub's GraphQL API; returns { receivedUsers, id }. */
  async send(to, text) {
    const res = await fetch(`${this.pubUrl}/query`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(this.pubAuthorization ? { authorization: this.pubAuthorization } : {}),
      },
      body: JSON.stringify({ query: SEND_MUTATION, variables: { to, text } }),
      signal: AbortSignal.timeout(5_000),
    });
    const body = await res.text();
    let json;
    try { json = JSON.parse(body); } catch { /* reported below */ }
    if (res.status !== 200 || !json || json.errors || !json.data?.sendNotification) {
      throw new Error(`sendNotification(${JSON.stringify(to)}) → HTTP ${res.status} ${body}\n${this.pub.logTail()}`);
    }
    return json.data.sendNotification;
  }

  /**
   * Sends probe notices to user until pub reports exactly n live subscriptions
   * received one. This is how a test knows a subscription is live (or gone)
   * without sleeping.
   */
  async waitForSubscribers(user, n, { timeout = 10_000 } = {}) {
    let last;
    await waitUntil(async () => {
      last = await this.send(user, `${PROBE_PREFIX} ${++this.probeSeq}`);
      return last.receivedUsers === n;
    }, {
      timeout,
      describe: () => `receivedUsers for ${JSON.stringify(user)} to be ${n} (last: ${last?.receivedUsers})\n${this.sub.logTail()}`,
    });
  }

  /**
   * Starts one more sub instance on the same Redis (as behind a load
   * balancer); the stack stops it with the rest. Returns { service, url, wsUrl }.
   */
  async startAnotherSub(env = {}) {
    this.extraSubs ??= [];
    const port = await freePort();
    const service = new Service(`sub${this.extraSubs.length + 2}`, path.join(BIN_DIR, 'sub'), [],
      { PORT: String(port), REDIS_URL: this.redisUrl, ...NO_DRAIN, ...this.subEnv, ...env }, this.logDir);
    this.extraSubs.push(service);
    service.start();
    const url = `http://127.0.0.1:${port}`;
    await this.waitReady(service, url);
    return { service, url, wsUrl: `ws://127.0.0.1:${port}/graphql` };
  }

  /**
   * Starts a real nginx (Debian's package) in front of the sub instances
   * at urls (http://127.0.0.1:port), proxying with deploy/nginx/sub.conf as
   * docker-compose.cluster.yml does; the stack stops it with the rest.
   * Returns { url, wsUrl }.
   */
  async startNginx(urls) {
    const port = await freePort();
    const dir = path.join(this.logDir, 'nginx');
    mkdirSync(path.join(dir, 'tmp'), { recursive: true });
    const upstreams = urls.map((u) => `        server ${new URL(u).host} max_fails=1 fail_timeout=10s;`).join('\n');
    writeFileSync(path.join(dir, 'nginx.conf'), `# written by e2e/lib/harness.mjs
master_process off;
daemon off;
worker_processes 1;
error_log stderr notice;
pid nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream sub {
        least_conn;
${upstreams}
    }
    server {
        listen 127.0.0.1:${port};
        include ${path.resolve(E2E_DIR, '..', 'deploy', 'nginx', 'sub.conf')};
    }
}
`);
    const bin = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
    this.nginx = new Service('nginx', bin, ['-p', `${dir}/`, '-c', path.join(dir, 'nginx.conf'), '-e', 'stderr'], {}, this.logDir);
    this.nginx.start();
    await waitUntil(async () => {
      if (this.nginx.unexpectedExit) throw new Error(`nginx exited: ${JSON.stringify(this.nginx.unexpectedExit)}\n${this.nginx.logTail()}`);
      return tcpOpen(port);
    }, { describe: () => `nginx on port ${port}` });
    return { url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/graphql` };
  }

  /** Stops sub (SIGTERM) and starts it again on the same port. */
  async restartSub() {
    const status = await this.sub.stop();
    this.sub.restarts++;
    this.sub.start();
    await this.waitReady(this.sub, this.subUrl);
    return status;
  }

  /** Services that died while nobody was stopping them. */
  unexpectedExits() {
    return [this.redis, this.pub, this.sub, ...(this.extraSubs ?? []), this.nginx]
      .filter((s) => s?.unexpectedExit)
      .map((s) => `${s.name} exited unexpectedly: ${JSON.stringify(s.unexpectedExit)}\n${s.logTail()}`);
  }

  async stop() {
    const problems = this.unexpectedExits();
    for (const service of [this.nginx, this.sub, ...(this.extraSubs ?? []), this.pub, this.redis]) {
      if (service) await service.stop();
    }
    return problems;
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
function tcpOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => done(true));
  });
}

/** True when a Redis server answers PING on 127.0.0.1:port. */
function redisPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => { buf += d; if (buf.includes('\r\n')) done(buf.startsWith('+PONG')); });
  });
}

/**
 * For node:test files: starts the stack before the file's tests, stops it
 * after them, and fails the file if a service died on its own meanwhile.
 * Returns an object whose fields are filled in once the stack runs.
 */
export function useStack(hooks, options = {}) {
  const { before, after } = hooks;
  const handle = {};
  before(async () => {
    Object.setPrototypeOf(handle, await startStack(options));
  }, { timeout: 60_000 });
  after(async () => {
    if (!Object.getPrototypeOf(handle)?.stop) return;
    const problems = await handle.stop();
    if (problems.length) throw new Error(problems.join('\n'));
  }, { timeout: 60_000 });
  return handle;
}

/** Collects notices delivered to one subscriber, probes left out. */
export class Inbox {
  constructor(name = 'inbox') {
    this.name = name;
    this.notices = [];
    this.errors = [];
    this.waiters = new Set();
  }

  // Arrow functions so they can be handed to clients as callbacks.
  push = (notice) => {
    if (!notice || isProbe(notice.text)) return;
    this.notices.push(notice);
    this.wake();
  };

  fail = (err) => {
    this.errors.push(err);
    this.wake();
  };

  wake() {
    for (const w of this.waiters) w();
  }

  texts() {
    return this.notices.map((n) => n.text);
  }

  count(text) {
    return this.notices.filter((n) => n.text === text).length;
  }

  /** Resolves with the first notice whose text is text. */
  async waitForText(text, timeout = 10_000) {
    const found = () => this.notices.find((n) => n.text === text);
    if (found()) return found();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.name}: no notice ${JSON.stringify(text)} within ${timeout} ms; got ${JSON.stringify(this.texts())}; errors ${describeErrors(this.errors)}`));
      }, timeout);
      const check = () => {
        const n = found();
        if (n) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve(n);
        }
      };
      this.waiters.add(check);
    });
  }
}

export function describeErrors(errors) {
  return JSON.stringify(errors.map((e) => {
    if (e instanceof Error) return e.message;
    if (e && typeof e === 'object' && 'code' in e && 'reason' in e) return `close ${e.code} ${e.reason}`;
    return e;
  }));
}

/** A unique user name, so tests never see each other's notices. */
let userSeq = 0;
export function uniqueUser(base) {
  return `${base}-${process.pid}-${++userSeq}`;
}
