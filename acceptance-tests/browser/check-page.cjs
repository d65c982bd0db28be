// Opens a page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core
// from scripts/setup --test-tools) and prints one JSON object on stdout: what the console and
// the page reported as errors, every request that was not for the file itself, and each
// plot's kind, expected series count, series lines drawn, marks (and how many are red, for
// points that missed their target) and rendered size. Saves a full-page
// PNG screenshot.
//
//   PLAYWRIGHT_CORE=.tools/playwright/node_modules/playwright-core \
//     node check-page.cjs PAGE.html SHOT.png
const path = require('path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

async function main() {
  const [page_file, shot] = process.argv.slice(2);
  const url = 'file://' + path.resolve(page_file);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // The machine's network is closed: background connections would only fail, noisily.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
    const errors = [];
    const requests = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
    page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
    await page.goto(url, { waitUntil: 'load' });
    const plots = await page.$$eval('figure.plot', (figures) => figures.map((f) => {
      const svg = f.querySelector('svg');
      const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
      return {
        kind: f.dataset.plot,
        expected: Number(f.dataset.series),
        series: svg ? svg.querySelectorAll('polyline.series').length : 0,
        marks: svg ? svg.querySelectorAll('circle').length : 0,
        // Points that missed their target: drawn red.
        missed: svg ? svg.querySelectorAll('circle[fill="#D62728"]').length : 0,
        texts: svg ? svg.querySelectorAll('text').length : 0,
        width: box.width,
        height: box.height,
      };
    }));
    const verdict = await page.$eval('#verdict', (p) => p.textContent);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(JSON.stringify({ title: await page.title(), verdict, errors, requests, plots }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
