/**
 * The broker exactly as `npm start` runs it (dist/main.js, which bench/run.ts builds first with
 * scripts/build.mjs), plus one thing: it exits (gracefully, through main's own SIGTERM handler)
 * when the benchmark's end of its stdin pipe closes, so a benchmark killed outright never leaves a
 * server behind.
 */
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.on('error', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.resume();

await import('../../dist/main.js');
