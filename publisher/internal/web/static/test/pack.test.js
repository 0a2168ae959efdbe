// npm pack makes an installable package of the client: tickwire.js and its
// type declarations, nothing else of this folder. Skipped without npm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..');

function hasNpm() {
  try {
    execFileSync('npm', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('npm pack: a package with tickwire.js and tickwire.d.ts that installs and imports', { skip: !hasNpm() && 'npm not installed' }, () => {
  const out = mkdtempSync(join(tmpdir(), 'tickwire-pack-'));
  try {
    const env = { ...process.env, npm_config_cache: join(out, 'cache'), npm_config_update_notifier: 'false' };
    const [info] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: dir, env }).toString());
    const files = info.files.map((f) => f.path).sort();
    assert.deepEqual(files, ['package.json', 'tickwire.d.ts', 'tickwire.js']);
    // Install the tarball offline into an empty project and import it by name.
    const app = join(out, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), '{"name":"app","private":true,"type":"module"}');
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', join(out, info.filename)], { cwd: app, env, stdio: 'ignore' });
    const probe = "import { TickwireClient, Subscription } from 'tickwire'; console.log(typeof TickwireClient, typeof Subscription);";
    assert.equal(execFileSync('node', ['--input-type=module', '-e', probe], { cwd: app }).toString().trim(), 'function function');
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules/tickwire/package.json')));
    assert.equal(pkg.types, './tickwire.d.ts');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
