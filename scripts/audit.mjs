// `npm run audit`: `npm audit --omit=dev` (the packages that ship in the images), passing its output and
// exit code through. A registry or mirror that refuses the audit endpoint is not a clean audit: say so
// plainly and exit 0, so the message is not mistaken for a vulnerability report. Dev-only advisories
// (s3rver's) are explained in docs/deployment.md.
import { spawnSync } from 'node:child_process';

const args = ['audit', '--omit=dev', ...process.argv.slice(2)];
// Under `npm run`, npm_execpath is the npm that started us; run the same one.
const npmCli = process.env.npm_execpath;
const result = npmCli
  ? spawnSync(process.execPath, [npmCli, ...args], { encoding: 'utf8' })
  : spawnSync('npm', args, { encoding: 'utf8', shell: process.platform === 'win32' });
if (result.error) throw result.error;
process.stdout.write(result.stdout);

const refused = /audit endpoint returned an error|ENOAUDIT|\b(404|405|501)\b[^\n]*\/-\/npm\/v1\/security/;
if (result.status !== 0 && refused.test(`${result.stderr}${result.stdout}`)) {
  const reason =
    result.stderr.match(/\b\d{3}\b[^\n]*\/-\/npm\/v1\/security[^\s]*/)?.[0] ?? 'no audit endpoint';
  console.error(
    `\nnpm audit did NOT run: the registry refused its audit endpoint (${reason}).\n` +
      'Nothing was checked. Run `npm run audit` where the public npm registry (or a mirror that serves\n' +
      '/-/npm/v1/security/advisories/bulk) is reachable.\n',
  );
  process.exit(0);
}
process.stderr.write(result.stderr);
process.exit(result.status ?? 1);
