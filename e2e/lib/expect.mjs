// Assertions shared by the client tests.
import assert from 'node:assert/strict';

/**
 * A delivered notice has the text that was sent, the id that pub answered
 * with, the scope it was sent to (sendNotification: PERSON), and a
 * timestamp in unix seconds stamped at publish time (so within a few
 * seconds of now; milliseconds would be far off).
 */
export function assertFreshNotice(notice, { text, id, scope = 'PERSON' }) {
  assert.equal(notice.text, text, 'text');
  assert.equal(notice.scope, scope, `scope of ${JSON.stringify(notice)}`);
  assert.equal(typeof notice.id, 'string', `id should be a string: ${JSON.stringify(notice)}`);
  assert.ok(notice.id.length > 0, 'id should not be empty');
  if (id !== undefined) assert.equal(notice.id, id, 'id should be the one sendNotification answered');
  const ts = Number(notice.timestamp);
  assert.ok(Number.isInteger(ts), `timestamp should be integral unix seconds: ${JSON.stringify(notice.timestamp)}`);
  const skew = Math.abs(ts - Date.now() / 1000);
  assert.ok(skew < 5, `timestamp ${ts} is ${skew.toFixed(1)} s away from now`);
}
