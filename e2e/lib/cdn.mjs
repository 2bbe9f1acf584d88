// The Playground pages load GraphiQL, React and their CSS from a CDN
// (cdn.jsdelivr.net), which this machine cannot reach. The same packages are
// installed from npm (package.json pins the versions gqlgen asks for), so the
// browser gets the identical bytes: the pages' Subresource Integrity hashes
// still hold, and a version gqlgen moves to that is not installed here fails
// loudly instead of quietly testing something else.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const CDN = 'https://cdn.jsdelivr.net/npm/';

const TYPES = { '.js': 'application/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json' };

/** Maps a CDN URL to the file of the installed npm package, or explains why not. */
export function resolveCdnUrl(url) {
  if (!url.startsWith(CDN)) return { error: 'not a CDN URL' };
  // npm/<name>@<version>/<file>, name possibly scoped
  const m = /^((?:@[^/]+\/)?[^@/]+)@([^/]+)\/(.+)$/.exec(url.slice(CDN.length).split(/[?#]/)[0]);
  if (!m) return { error: 'no pinned version in the URL' };
  const [, name, version, file] = m;
  let pkgJson;
  try {
    pkgJson = require.resolve(`${name}/package.json`);
  } catch {
    return { error: `${name} is not installed; add ${name}@${version} to e2e/package.json` };
  }
  const installed = require(pkgJson).version;
  if (installed !== version) return { error: `page wants ${name}@${version}, e2e has ${installed}; pin ${version} in e2e/package.json` };
  return { file: path.join(path.dirname(pkgJson), file), name, version };
}

/**
 * Routes every CDN request of a Playwright page or context to the npm
 * packages. Returns the list of what was served and what was not.
 */
export async function serveCdnFromNpm(target) {
  const log = { served: [], missing: [] };
  await target.route(`${CDN}**`, async (route) => {
    const url = route.request().url();
    const { file, error } = resolveCdnUrl(url);
    if (error) {
      log.missing.push(`${url}: ${error}`);
      return route.fulfill({ status: 404, body: error });
    }
    let body;
    try {
      body = await readFile(file);
    } catch {
      log.missing.push(`${url}: ${file} is not in the npm package`);
      return route.fulfill({ status: 404, body: 'not in the npm package' });
    }
    log.served.push(url);
    return route.fulfill({
      status: 200,
      body,
      headers: {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        // The pages load these with crossorigin="anonymous".
        'access-control-allow-origin': '*',
      },
    });
  });
  return log;
}
