#!/usr/bin/env node
// Validates the operator files with promtool (Debian/Ubuntu: `apt-get install prometheus`):
// the alert rules and their unit tests, and every PromQL query of the Grafana dashboard (as
// recording rules, with Grafana's variables filled in). Fails loudly when promtool is missing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const promtool = (...args) => execFileSync('promtool', args, { stdio: 'inherit', cwd: join(here, 'prometheus') });

try {
  execFileSync('promtool', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('!! promtool not found: install it (apt-get install -y prometheus) to check ops/prometheus and ops/grafana');
  process.exit(1);
}

promtool('check', 'rules', 'alerts.yml');
promtool('test', 'rules', 'alerts.test.yml');

const dashboard = JSON.parse(readFileSync(join(here, 'grafana', 'broker.json'), 'utf8'));
const exprs = [];
const walk = (panels) => {
  for (const p of panels ?? []) {
    for (const t of p.targets ?? []) exprs.push({ panel: p.title, expr: t.expr });
    walk(p.panels);
  }
};
walk(dashboard.panels);
if (exprs.length === 0) throw new Error('the dashboard has no queries');
const fill = (expr) => expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
const rules = ['groups:', '  - name: dashboard', '    rules:'];
exprs.forEach(({ expr }, i) => rules.push(`      - record: dashboard:query_${i}`, `        expr: ${JSON.stringify(fill(expr))}`));
const dir = mkdtempSync(join(tmpdir(), 'broker-dashboard-'));
try {
  writeFileSync(join(dir, 'dashboard-queries.yml'), rules.join('\n') + '\n');
  console.log(`Checking ${exprs.length} dashboard queries`);
  execFileSync('promtool', ['check', 'rules', join(dir, 'dashboard-queries.yml')], { stdio: 'inherit' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
