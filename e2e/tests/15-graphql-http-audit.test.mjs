// graphql-http's audit suite (auditServer, the GraphQL-over-HTTP spec's
// checks) against pub's /query and sub's /graphql through the binaries:
// no MUST (status "error") and no SHOULD (status "warn") may fail. MAY
// results ("notice") are printed, not failed.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { auditServer } from 'graphql-http';
import { useStack } from '../lib/harness.mjs';

const stack = useStack({ before, after }, { name: 'graphql-http-audit' });

async function audit(url) {
  const results = await auditServer({ url });
  assert.ok(results.length > 20, `the audit ran only ${results.length} checks`);
  const failed = results.filter((r) => r.status === 'error' || r.status === 'warn');
  for (const r of results.filter((r) => r.status === 'notice')) {
    console.log(`  MAY not met at ${url}: ${r.name} — ${r.reason}`);
  }
  const report = await Promise.all(failed.map(async (r) => {
    let body = '';
    try { body = await r.response.text(); } catch { /* already read */ }
    return `${r.status === 'error' ? 'MUST' : 'SHOULD'} failed: ${r.name}\n    ${r.reason}\n    HTTP ${r.response.status} ${r.response.headers.get('content-type')} ${body.slice(0, 300)}`;
  }));
  assert.equal(failed.length, 0, `${url}: ${failed.length} of ${results.length} audits failed\n${report.join('\n')}`);
}

test("pub's /query passes every MUST and SHOULD of the GraphQL-over-HTTP audit", async () => {
  await audit(`${stack.pubUrl}/query`);
});

test("sub's /graphql passes every MUST and SHOULD of the GraphQL-over-HTTP audit", async () => {
  await audit(`${stack.subUrl}/graphql`);
});
