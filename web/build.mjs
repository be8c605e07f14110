// Bundles src/ into dist/: hashed assets under dist/static/ (cached for a year by the server)
// and an index.html naming them. Fails when the first load exceeds the size budget.
// Files whose bytes did not change are not rewritten: the release binary embeds dist/ and
// cargo rebuilds it when a file's modification time changes.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const BUDGET_GZIP_BYTES = 150 * 1024;
const dist = path.resolve('dist');
const wanted = new Set();

function put(file, bytes) {
    wanted.add(file);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (fs.existsSync(file) && Buffer.compare(fs.readFileSync(file), Buffer.from(bytes)) === 0) {
        return;
    }
    fs.writeFileSync(file, bytes);
}

const result = await esbuild.build({
    entryPoints: ['src/main.tsx'],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2020'],
    outdir: path.join(dist, 'static'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    metafile: true,
    write: false,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
});

for (const out of result.outputFiles) {
    put(out.path, out.contents);
}
const outputs = result.outputFiles.map((o) => o.path);
const js = outputs.find((p) => p.endsWith('.js'));
const css = outputs.find((p) => p.endsWith('.css'));
const url = (p) => '/static/' + path.basename(p);
const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>confab</title>
<link rel="icon" href="data:,">
${css ? `<link rel="stylesheet" href="${url(css)}">` : ''}
<script type="module" src="${url(js)}"></script>
</head>
<body><div id="app"></div></body>
</html>
`;
put(path.join(dist, 'index.html'), html);

let gzipped = 0;
for (const p of [js, css].filter(Boolean)) {
    gzipped += zlib.gzipSync(fs.readFileSync(p), { level: 9 }).length;
}
gzipped += zlib.gzipSync(html).length;
put(path.join(dist, 'budget.json'), JSON.stringify({ gzipped_bytes: gzipped, budget_bytes: BUDGET_GZIP_BYTES }) + '\n');
for (const file of fs.readdirSync(path.join(dist, 'static')).map((f) => path.join(dist, 'static', f))) {
    if (!wanted.has(file)) {
        fs.rmSync(file);
    }
}
console.log(`web: first load ${(gzipped / 1024).toFixed(1)} KiB gzipped (budget ${BUDGET_GZIP_BYTES / 1024} KiB)`);
if (gzipped > BUDGET_GZIP_BYTES) {
    console.error('web: over the size budget');
    process.exit(1);
}
