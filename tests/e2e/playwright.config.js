// natter's browser tests. `cargo xtask test` builds the web client (dist/) and the
// server, then runs `npx playwright test` here; Playwright starts the real server on a
// fresh SQLite database and drives Debian's chromium (Playwright's own browser download
// cannot work on these machines).
const { defineConfig } = require('@playwright/test');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const port = Number(process.env.NATTER_E2E_PORT || 18473);
// Test workers load this file again: they inherit the runner's directory through the
// environment instead of making their own.
const dataDir = process.env.NATTER_E2E_DATA_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'natter-e2e-'));
process.env.NATTER_E2E_DATA_DIR = dataDir;
const serverBin = process.env.NATTER_SERVER_BIN || path.join(root, 'target', 'debug', 'natter-server');

// Email: a real SMTP server (aiosmtpd, installed by `cargo xtask test`) storing what it
// receives in a Maildir; without it, natter's own outbox directory. Either way the
// tests read the emails from NATTER_E2E_MAILDIR (test workers inherit the variable).
const smtpPython = process.env.NATTER_TEST_SMTP_PYTHON;
const smtpPort = port + 1;
process.env.NATTER_E2E_MAILDIR = smtpPython ? path.join(dataDir, 'maildir', 'new') : path.join(dataDir, 'outbox');
const smtpServer = smtpPython
  ? [{
      command: `"${smtpPython}" -m aiosmtpd -n -l 127.0.0.1:${smtpPort} -c aiosmtpd.handlers.Mailbox "${path.join(dataDir, 'maildir')}"`,
      port: smtpPort,
      reuseExistingServer: false,
      timeout: 30_000,
    }]
  : [];

module.exports = defineConfig({
  testDir: '.',
  testMatch: '*.spec.js',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: path.join(os.tmpdir(), 'natter-e2e-results'),
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    trace: 'off',
  },
  webServer: [...smtpServer, {
    command: `"${serverBin}"`,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
    env: {
      NATTER_LISTEN: `127.0.0.1:${port}`,
      NATTER_DATABASE_URL: `sqlite://${path.join(dataDir, 'natter.db')}`,
      NATTER_STATIC_DIR: path.join(root, 'dist'),
      NATTER_PRESENCE_GRACE_MS: '1000',
      // One test posts 150 messages over one socket at full speed; the default rate
      // limits (tested in the server's own tests) would rightly slow it down.
      NATTER_RATE_PER_CONNECTION: '1000',
      NATTER_BURST_PER_CONNECTION: '1000',
      NATTER_RATE_PER_IP: '2000',
      NATTER_BURST_PER_IP: '2000',
      RUST_LOG: 'warn',
      NATTER_OUTBOX_DIR: path.join(dataDir, 'outbox'),
      NATTER_FILES_DIR: path.join(dataDir, 'files'),
      ...(smtpPython ? { NATTER_SMTP_URL: `smtp://127.0.0.1:${smtpPort}` } : {}),
    },
  }],
});
