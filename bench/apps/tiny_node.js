// The benchmarks' node app (bench_managers): node's http on $HOST:$PORT, keep-alive;
// 'release <X>' on /, 'ok' on /health; X from VERSION next to this file, read once at start.
// On SIGINT/SIGTERM (pm2 reload sends SIGINT, berth SIGTERM) it stops accepting, answers what
// is in flight with "Connection: close", closes idle connections and exits when all are done.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const version = fs.readFileSync(path.join(__dirname, 'VERSION'), 'utf8').trim();
const body = 'release ' + version + '\n';
let stopping = false;

const server = http.createServer((req, res) => {
  const data = req.url.split('?')[0] === '/health' ? 'ok' : body;
  const headers = {'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(data)};
  if (stopping) headers['Connection'] = 'close';
  res.writeHead(200, headers);
  res.end(data);
});
server.keepAliveTimeout = 60000;

function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
server.listen(Number(process.env.PORT), process.env.HOST || '127.0.0.1');
