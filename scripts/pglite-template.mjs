// Builds, once per PGlite version, the empty database cluster a fresh DATA_DIR is copied from
// (src/db/pglite.ts): PGlite's initdb takes 5–7 s of CPU, a copy a tenth of a second, so the first
// `npm start` after `npm ci` is as quick as any other. Run by `postinstall`; never fails the
// install: without a template the broker runs initdb itself, as before, and saves one.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

try {
  const { version } = JSON.parse(readFileSync(join(root, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8'));
  const template = join(root, 'node_modules', '.cache', 'book-purchase-broker', `pglite-${version}`);
  if (!existsSync(join(template, 'PG_VERSION'))) {
    const staging = `${template}.${process.pid}`;
    mkdirSync(staging, { recursive: true });
    const { PGlite } = await import('@electric-sql/pglite');
    await (await PGlite.create(staging)).close();
    rmSync(template, { recursive: true, force: true });
    renameSync(staging, template);
    console.log(`pglite-template: an empty database for PGlite ${version} is ready for fresh data directories`);
  }
} catch (e) {
  console.warn(`pglite-template: skipped (${e instanceof Error ? e.message : e}); the first start initialises the database itself`);
}
