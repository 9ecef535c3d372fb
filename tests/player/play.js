// Plays each master playlist given on the command line with hls.js in
// headless Chromium and prints one JSON report per playlist:
//   node play.js http://127.0.0.1:PORT/play.html out/a/master.m3u8 ...
// A report ends when the video ends, a fatal error occurs, or 60 s pass.
const { chromium } = require('playwright-core');

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

(async () => {
  const [page_url, ...sources] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  for (const src of sources) {
    const page = await browser.newPage();
    await page.goto(`${page_url}?src=${encodeURIComponent(src)}`);
    let timedOut = false;
    try {
      await page.waitForFunction(() => window.report && window.report.ended, null, { timeout: 60000 });
    } catch (e) {
      timedOut = true;
    }
    const report = await page.evaluate(() => window.report);
    console.log(JSON.stringify({ src, timedOut, ...report }));
    await page.close();
  }
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
