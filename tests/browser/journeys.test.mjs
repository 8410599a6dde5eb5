// Kettle's user journeys in headless Chromium (Debian's, at /usr/bin/chromium), driven by
// playwright-core. Every page visited is checked with axe-core against WCAG 2.2 A and AA,
// must not trip the Content-Security-Policy and must not scroll sideways at 320 CSS pixels
// wide (WCAG 1.4.10 Reflow); each gets a screenshot in screenshots/.
//
// Runs against the release binary (KETTLE_BIN, or target/release/kettle under
// CARGO_TARGET_DIR or the repository) on a fresh SQLite database.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { crc32, deflateSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startProvider } from "./oauth_provider.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repository = path.resolve(here, "../..");
const kettleBinary =
  process.env.KETTLE_BIN ??
  path.join(process.env.CARGO_TARGET_DIR ?? path.join(repository, "target"), "release", "kettle");
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
// Every journey runs at one window size: KETTLE_VIEWPORT, as WIDTHxHEIGHT, 1280x800 unless
// given. `npm test` runs them all at 1280x800, a laptop (`npm run test:wide`), and again at
// 375x812, a phone (`npm run test:narrow`): each journey must pass, axe and reflow clean,
// at both.
const [viewportWidth, viewportHeight] = (process.env.KETTLE_VIEWPORT ?? "1280x800").split("x").map(Number);
const VIEWPORT = { width: viewportWidth, height: viewportHeight };
// Narrower than app.css's breakpoint (48.0625em, 769px), the header's links are folded
// behind "Menu"; journeys open it (openMenu) before they use them.
const NARROW = VIEWPORT.width < 769;
const screenshots = path.join(here, "screenshots", `${VIEWPORT.width}`);
const PASSWORD = "kettle whistles over marmalade";

let server;
let baseUrl;
let browser;
let dataDir;
// Mock OAuth2 providers, configured as LOCAL ("Local ID") and OTHER ("Other ID").
let localProvider;
let otherProvider;

before(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), "kettle-browser-"));
  mkdirSync(screenshots, { recursive: true });
  localProvider = await startProvider();
  otherProvider = await startProvider();
  server = spawn(kettleBinary, ["serve"], {
    env: {
      ...process.env,
      KETTLE_LISTEN: "127.0.0.1:0",
      KETTLE_DATA_DIR: dataDir,
      KETTLE_LOG_FORMAT: "json",
      KETTLE_DATABASE_URL: "",
      // Every journey comes from 127.0.0.1 and registers many members: raise the
      // per-address limits (the API tests check the limits themselves).
      KETTLE_RATE_LIMITS:
        "register_address=10000/3600, sign_in_address=10000/900, writes_member=100000/3600, preview_client=10000/60, graphql_cost_client=1000000000/60",
      ...localProvider.env("LOCAL", "Local ID"),
      ...otherProvider.env("OTHER", "Other ID"),
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("kettle did not start within 30 seconds")), 30_000);
    server.on("exit", (code) => reject(new Error(`kettle exited with ${code}`)));
    // A binary that is not there (CARGO_TARGET_DIR unset, say) fails at once, not after 30 seconds.
    server.on("error", (error) => reject(new Error(`kettle could not start from ${kettleBinary}: ${error.message}`)));
    createInterface({ input: server.stderr }).on("line", (line) => {
      try {
        const event = JSON.parse(line);
        if (event.message === "kettle is serving") {
          clearTimeout(timer);
          resolve(`http://${event.address}`);
        }
      } catch {
        // not a JSON line; ignore
      }
    });
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.on("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  await localProvider?.close();
  await otherProvider?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A fresh browser context (its own cookies), recording CSP violations. */
async function newPage({ javaScriptEnabled = true } = {}) {
  const context = await browser.newContext({ javaScriptEnabled, viewport: VIEWPORT });
  const page = await context.newPage();
  page.javaScriptDisabled = !javaScriptEnabled;
  page.setDefaultTimeout(10_000);
  page.cspViolations = [];
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) page.cspViolations.push(message.text());
  });
  return page;
}

/**
 * Shows the header's links, as a member on a narrow screen would: there they are behind
 * "Menu", a disclosure, closed on every page load, and a hidden link can be neither
 * clicked nor counted. Does nothing on a wide screen, where they always show, or when the
 * menu is already open. Works without JavaScript (a <details> needs none).
 */
async function openMenu(page) {
  if (!NARROW) return;
  const nav = page.getByRole("navigation", { name: "Main" });
  if (await nav.isVisible()) return;
  await page.locator(".site-menu > summary").click();
  await nav.waitFor();
}

const checked = new Set();

/** axe-core with the WCAG 2.2 A and AA rules; fails on any violation. The same page at
 * 320 CSS pixels wide must not scroll sideways (see checkReflow). And a screenshot. */
async function checkPage(page, name) {
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
  assert.deepEqual(page.cspViolations, [], `CSP violations on ${name}`);
  // A page without JavaScript cannot run axe: check the same markup, with the same styles,
  // in a page that can.
  let target = page;
  if (page.javaScriptDisabled) {
    const html = await page.content();
    const context = await browser.newContext({ viewport: VIEWPORT });
    target = await context.newPage();
    await target.goto(baseUrl + "/healthz");
    await target.setContent(html, { waitUntil: "load" });
  }
  try {
    // Evaluated through the DevTools protocol, so the page's CSP does not block axe itself.
    await target.evaluate(axeSource);
    const results = await target.evaluate(() =>
      globalThis.axe.run(document, {
        runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] },
      }),
    );
    const problems = results.violations.map(
      (v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => n.target.join(" ")).join("\n    ")}`,
    );
    assert.deepEqual(problems, [], `axe found problems on ${name} (${page.url()}):\n${problems.join("\n")}`);
    assert.ok(results.passes.length > 10, "axe ran its rules");
    await checkReflow(target, `${name} (${page.url()})`);
    await checkPunctuation(target, `${name} (${page.url()})`);
  } finally {
    if (target !== page) await target.context().close();
  }
  checked.add(name);
}

/**
 * Fails where the page's own words end a sentence twice ("Ada Ltd..", "cancelled?."): a
 * message written with its full stop, then given another. An ellipsis is not doubled.
 * What members wrote (Markdown, comments, quoted messages) is theirs and not checked.
 */
async function checkPunctuation(page, name) {
  const doubled = await page.evaluate(() => {
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest(".prose, .quote, .comment__body, pre, code, textarea, script")) continue;
      const match = node.textContent.match(/(?<![.])[.!?]\.(?![.])/);
      if (match) found.push(node.textContent.trim().slice(0, 120));
    }
    return found;
  });
  assert.deepEqual(doubled, [], `doubled punctuation on ${name}`);
}

/** The width WCAG 1.4.10 asks content to reflow in: 1280 CSS pixels at 400% zoom. */
const REFLOW_WIDTH = 320;

/**
 * Fails if the page scrolls sideways at REFLOW_WIDTH CSS pixels wide, naming the element
 * that reaches furthest right outside any scroll container (a code block's region may
 * scroll; the page may not). The viewport goes back to its size afterwards.
 */
async function checkReflow(page, name) {
  const viewport = page.viewportSize();
  await page.setViewportSize({ width: REFLOW_WIDTH, height: viewport.height });
  try {
    const overflow = await page.evaluate(() => {
      const root = document.documentElement;
      if (root.scrollWidth <= root.clientWidth) return null;
      const clipped = (element) => {
        for (let a = element.parentElement; a && a !== document.body; a = a.parentElement) {
          if (getComputedStyle(a).overflowX !== "visible") return true;
        }
        return false;
      };
      let widest = null;
      for (const element of document.body.querySelectorAll("*")) {
        const right = element.getBoundingClientRect().right + window.scrollX;
        if (right > root.clientWidth && !clipped(element) && (!widest || right > widest.right)) widest = { element, right };
      }
      const describe = (element) => {
        const path = [];
        for (let e = element; e && e !== document.body; e = e.parentElement) {
          path.unshift(e.tagName.toLowerCase() + (e.id ? `#${e.id}` : "") + [...e.classList].map((c) => `.${c}`).join(""));
        }
        const text = (element.textContent ?? "").trim().replace(/\s+/g, " ").slice(0, 60);
        return `${path.join(" > ")}${text ? ` ("${text}")` : ""}`;
      };
      return {
        scrollWidth: root.scrollWidth,
        clientWidth: root.clientWidth,
        widest: widest ? `${describe(widest.element)}, right edge at ${Math.round(widest.right)}px` : "(none found)",
      };
    });
    assert.equal(
      overflow,
      null,
      overflow &&
        `${name} scrolls sideways at ${REFLOW_WIDTH}px: ${overflow.scrollWidth}px of content in ${overflow.clientWidth}px; ` +
          `widest: ${overflow.widest}`,
    );
  } finally {
    await page.setViewportSize(viewport);
  }
}

function uniqueEmail(name) {
  return `${name}.${Date.now()}.${Math.floor(Math.random() * 1e6)}@example.org`;
}

test("register, sign out, sign in, edit the profile, manage tokens, see errors", async () => {
  const page = await newPage();
  const email = uniqueEmail("ada");

  await page.goto(baseUrl + "/");
  await checkPage(page, "home-signed-out");
  await page.getByRole("link", { name: "Create an account" }).click();
  await assert.doesNotReject(page.waitForURL("**/register"));
  await checkPage(page, "register");

  // A form with errors: the summary is focused and links to each field.
  await page.getByRole("button", { name: "Create account" }).click();
  const summary = page.locator(".error-summary");
  await summary.waitFor();
  assert.equal(await page.title(), "Error: Create an account – Kettle");
  assert.ok(await summary.evaluate((el) => el === document.activeElement), "the error summary has focus");
  assert.deepEqual(await summary.locator("a").allTextContents(), [
    "Enter your email address.",
    "Enter your display name.",
    "Password must be 10 characters or more.",
  ]);
  await checkPage(page, "register-errors");
  await summary.getByRole("link", { name: "Enter your display name." }).click();
  assert.equal(await page.evaluate(() => document.activeElement.id), "displayName");

  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Display name").fill("Ada Lovelace");
  await page.getByLabel("Password").fill("password123");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.locator("#password-error").waitFor();
  assert.match(await page.locator("#password-error").innerText(), /harder to guess/);
  assert.equal(await page.getByLabel("Email address").inputValue(), email, "typed values are kept");
  assert.equal(await page.getByLabel("Password").inputValue(), "", "passwords are not sent back");

  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  // Registering does not sign in (the page must not tell a new address from a taken one):
  // it says to check the mail, and signing in with the password works at once.
  await page.getByRole("heading", { name: "Check your email" }).waitFor();
  await page.getByText(`We have sent an email to ${email}.`).waitFor();
  await checkPage(page, "check-email");
  await page.getByRole("main").getByRole("link", { name: "Sign in" }).click();
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Welcome back, Ada Lovelace" }).waitFor();
  await checkPage(page, "home-signed-in");

  // Sign out, then back in.
  await openMenu(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You have signed out.").waitFor();
  await openMenu(page);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sign in" }).click();
  await checkPage(page, "sign-in");
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator(".error-summary").waitFor();
  await checkPage(page, "sign-in-errors");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Welcome back, Ada Lovelace" }).waitFor();

  // Edit the profile.
  await openMenu(page);
  await page.getByRole("link", { name: "Settings" }).click();
  await checkPage(page, "settings");
  await page.getByLabel("Display name").fill("");
  await page.getByLabel("Time zone").selectOption("America/New_York");
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.locator(".error-summary").waitFor();
  await checkPage(page, "settings-errors");
  await page.getByLabel("Display name").fill("Ada King");
  await page.getByLabel("Bio").fill("Service designer at a county council.");
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.getByText("Your profile has been saved.").waitFor();
  assert.equal(await page.getByLabel("Time zone").inputValue(), "America/New_York");
  await openMenu(page);
  await page.getByRole("link", { name: "Ada King" }).click();
  await page.getByRole("heading", { name: "Ada King" }).waitFor();
  await page.getByText("Service designer at a county council.").waitFor();
  await checkPage(page, "member-profile");

  // Create a token, see it once, revoke it.
  await page.goto(baseUrl + "/settings");
  await page.getByLabel("Token name").fill("weekly report");
  await page.getByLabel("Expires after").selectOption("30");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = await page.getByRole("textbox", { name: "Token", exact: true }).inputValue();
  assert.match(secret, /^kpat_/);
  await checkPage(page, "settings-new-token");
  const api = await fetch(baseUrl + "/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
    body: JSON.stringify({ query: "{ viewer { displayName } }" }),
  });
  assert.deepEqual(await api.json(), { data: { viewer: { displayName: "Ada King" } } });
  await page.goto(baseUrl + "/settings");
  assert.equal(await page.content().then((html) => html.includes(secret)), false, "shown only once");
  await page.getByRole("button", { name: "Revoke weekly report" }).click();
  await page.getByText("The token has been revoked.").waitFor();
  await page.getByText("You have no access tokens.").waitFor();

  await page.goto(baseUrl + "/no/such/page");
  await checkPage(page, "not-found");
  await page.context().close();
});

test("everything works with JavaScript turned off", async () => {
  const page = await newPage({ javaScriptEnabled: false });
  const email = uniqueEmail("grace");
  await page.goto(baseUrl + "/register");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.locator(".error-summary").waitFor();
  await checkPage(page, "register-errors-no-js");
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Display name").fill("Grace Hopper");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Check your email" }).waitFor();
  await page.getByRole("main").getByRole("link", { name: "Sign in" }).click();
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Welcome back, Grace Hopper" }).waitFor();

  await openMenu(page);
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByLabel("Token name").fill("cron job");
  await page.getByRole("button", { name: "Create token" }).click();
  assert.match(await page.getByRole("textbox", { name: "Token", exact: true }).inputValue(), /^kpat_/);
  assert.equal(await page.getByRole("button", { name: "Copy token" }).isVisible(), false, "needs JavaScript, so hidden");
  await checkPage(page, "settings-new-token-no-js");
  await page.getByRole("button", { name: "Revoke cron job" }).click();
  await page.getByText("You have no access tokens.").waitFor();

  await openMenu(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You have signed out.").waitFor();
  await page.context().close();
});

test("a keyboard alone can skip to content and sign in", async () => {
  const setup = await newPage();
  const email = uniqueEmail("alan");
  await setup.goto(baseUrl + "/register");
  await setup.getByLabel("Email address").fill(email);
  await setup.getByLabel("Display name").fill("Alan Turing");
  await setup.getByLabel("Password").fill(PASSWORD);
  await setup.getByRole("button", { name: "Create account" }).click();
  await setup.getByRole("heading", { name: "Check your email" }).waitFor();
  await setup.context().close();

  const page = await newPage();
  await page.goto(baseUrl + "/sign-in?return_to=/settings");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to main content");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main-content");
  // Tab through the form in order: email, password, then the button.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "email");
  await page.keyboard.type(email);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "password");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await page.waitForURL("**/settings");
  await page.getByRole("heading", { name: "Settings" }).waitFor();
  // Focus is visible: the focused field gets the yellow outline.
  await page.getByLabel("Display name").focus();
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineColor);
  assert.equal(outline, "rgb(255, 221, 0)");
  await page.context().close();
});

test("write, preview and publish a case study; another member finds it", async () => {
  // An administrator adds the topics (through the API, as the site has no admin pages yet).
  const token = await registerAdmin("Site Admin");
  for (const name of ["Bin collection", "Accessibility"]) {
    await api(token, "mutation($n: String!) { createTopic(input: { name: $n }) { topic { id } } }", { n: name });
  }

  const page = await newPage();
  await registerOnSite(page, "Wren Writer");
  await page.getByRole("link", { name: "Write a case study" }).click();
  await checkPage(page, "case-study-new");
  await page.getByRole("button", { name: "Save draft" }).click();
  await page.locator(".error-summary").waitFor();
  await page.locator(".error-summary").getByRole("link", { name: "Choose the service's phase." }).waitFor();
  await checkPage(page, "case-study-errors");

  await page.getByLabel("Title").fill("Moving bin reminders online");
  await page.getByLabel("Summary").fill("Residents get a text the night before; missed collections fell by a third.");
  await page.getByLabel("Case study", { exact: true }).fill("## What we did\n\nWe *tested* with residents.\n\n<script>alert(1)</script>");
  await page.getByRole("button", { name: "Preview" }).click();
  await page.getByRole("heading", { name: "Preview" }).waitFor();
  assert.equal(await page.locator(".preview em").innerText(), "tested");
  assert.equal(await page.locator(".preview script").count(), 0);
  await checkPage(page, "case-study-preview");
  // An image is described, uploaded, and shown in the preview from the site's own origin.
  await page.getByLabel("What the image shows").fill("Chart of missed collections falling by a third");
  await page.getByLabel("Image file").setInputFiles({ name: "chart.png", mimeType: "image/png", buffer: png(900, 300) });
  await page.getByRole("button", { name: "Upload image" }).click();
  await page.getByText("Your image is at the end of the text").waitFor();
  const chart = page.locator('.preview img[alt="Chart of missed collections falling by a third"]');
  await chart.waitFor();
  await chart.scrollIntoViewIfNeeded();
  await page.waitForFunction(() => document.querySelector(".preview img").complete);
  // It loads, at the width that fills the column: `sizes` makes the column 608px from 640px
  // up, so of the 480 and 900px widths the 900 (no suffix) is chosen; narrower, it is the
  // screen's width, and at 480px or less (a phone's 375) the 480 (`-480`) fills it.
  assert.ok(await chart.evaluate((img) => img.naturalWidth > 0), "the image loads");
  const column = VIEWPORT.width >= 640 ? 608 : VIEWPORT.width;
  const rendition = column <= 480 ? "-480" : "";
  assert.match(await chart.evaluate((img) => img.currentSrc), new RegExp(`/uploads/[0-9a-f]{32}${rendition}\\.png$`));
  assert.match(await page.getByLabel("Case study", { exact: true }).inputValue(), /\n\n!\[Chart of missed collections falling by a third\]\(\/uploads\/[0-9a-f]{32}\.png\)\n$/);
  await checkPage(page, "case-study-image");
  await page.getByLabel("Live").check();
  await page.getByLabel("Bin collection").check();
  await page.getByRole("button", { name: "Save draft" }).click();
  await page.getByText("Only its authors can see it.").waitFor();
  await checkPage(page, "case-study-draft");
  // A draft can be deleted; the page asks first, and keeping it changes nothing.
  await page.getByRole("link", { name: "Delete this draft" }).click();
  await page.getByRole("heading", { level: 1, name: "Delete the draft “Moving bin reminders online”?" }).waitFor();
  await checkPage(page, "case-study-delete");
  await page.getByRole("link", { name: "No, keep it" }).click();
  await page.getByText("Only its authors can see it.").waitFor();
  await page.getByRole("button", { name: "Publish" }).click();
  await page.getByText("Your case study is published.").waitFor();
  await page.locator('.prose img[alt="Chart of missed collections falling by a third"]').waitFor();
  await checkPage(page, "case-study");
  const published = page.url();
  // "Your images" lists it; deleting asks first, and keeping it changes nothing.
  await page.goto(baseUrl + "/settings/images");
  await page.getByText("Chart of missed collections falling by a third", { exact: true }).waitFor();
  await checkPage(page, "settings-images");
  await page.getByRole("link", { name: "Delete the image “Chart of missed collections falling by a third”" }).click();
  await page.getByRole("heading", { level: 1, name: "Delete this image?" }).waitFor();
  await checkPage(page, "image-delete");
  await page.getByRole("link", { name: "No, keep it" }).click();
  await page.getByRole("heading", { level: 1, name: "Your images" }).waitFor();
  await page.goto(published);
  // The phase was chosen, not given: the first Save draft said to choose one.

  // An edit with a note on what changed: saying so, and kept in its history.
  await page.getByRole("link", { name: "Edit this case study" }).click();
  await page.getByLabel("Summary").fill("Residents get a text the night before; missed collections fell by a half.");
  await page.getByLabel("What changed (optional for a typo fixed)").fill("Updated the fall in missed collections.");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Your changes are saved and published.").waitFor();
  await page.getByText(": Updated the fall in missed collections.").waitFor();
  await page.getByRole("link", { name: "see all updates" }).click();
  await page.getByRole("heading", { level: 1, name: "All updates" }).waitFor();
  await checkPage(page, "case-study-history");
  await page.getByRole("link", { name: "See what changed from version 1 to version 2" }).click();
  await page.getByRole("heading", { level: 1, name: "What changed from version 1 to version 2" }).waitFor();
  assert.equal(await page.locator(".diff__added").last().textContent(), "[added: half.]", "named for screen readers too");
  assert.equal(await page.locator(".diff__removed").last().textContent(), "[taken out: third.]");
  await checkPage(page, "case-study-compare");

  const reader = await newPage();
  await reader.goto(baseUrl + "/case-studies");
  await checkPage(reader, "case-studies");
  await reader.getByLabel("Topic").selectOption("bin-collection");
  await reader.getByRole("button", { name: "Filter" }).click();
  await reader.getByRole("link", { name: "Moving bin reminders online" }).click();
  await reader.getByRole("heading", { name: "Moving bin reminders online" }).waitFor();
  await reader.getByRole("link", { name: "Bin collection" }).click();
  await checkPage(reader, "topic");
  await openMenu(reader);
  await reader.getByRole("link", { name: "Search" }).click();
  await reader.getByLabel("Search case studies, artefacts and organisations").fill("night before");
  await reader.getByRole("button", { name: "Search" }).click();
  await reader.getByRole("heading", { name: "1 result for “night before”" }).waitFor();
  assert.equal(await reader.locator("mark").first().innerText(), "night");
  await checkPage(reader, "search");
  await page.context().close();
  await reader.context().close();
});

test("a co-author is invited, sees only the title, and accepts from the invitations page", async () => {
  const admin = await registerAdmin("Topic Admin");
  await api(admin, "mutation { createTopic(input: { name: \"Parking\" }) { topic { id } } }");
  const topics = await api(admin, "{ topics(first: 50) { edges { node { id name } } } }");
  const parking = topics.topics.edges.find((e) => e.node.name === "Parking").node.id;

  const grace = await newPage();
  const graceEmail = await registerOnSite(grace, "Grace Coauthor");
  const graceHandle = (await api(await apiSignIn(graceEmail), "{ viewer { handle } }")).viewer.handle;
  const writer = await newPage();
  const writerToken = await apiSignIn(await registerOnSite(writer, "Wynn Writer"));
  await api(writerToken, "mutation($input: CreateCaseStudyInput!) { createCaseStudy(input: $input) { caseStudy { id } userErrors { message } } }", {
    input: {
      title: "Parking permits without paper",
      summary: "Permits moved online; queues at the counter went.",
      body: "We *did* it.",
      phase: "BETA",
      topicIds: [parking],
      coAuthorHandles: [graceHandle],
    },
  });

  await grace.goto(baseUrl + "/settings");
  await grace.getByRole("link", { name: "Answer your co-author invitations" }).click();
  await grace.getByRole("heading", { name: "Co-author invitations" }).waitFor();
  await grace.getByRole("heading", { name: "Parking permits without paper" }).waitFor();
  await checkPage(grace, "coauthor-invitations");
  await grace.getByRole("button", { name: "Accept the invitation to co-author “Parking permits without paper”" }).click();
  await grace.getByRole("heading", { name: "Parking permits without paper" }).waitFor();
  await checkPage(grace, "coauthor-accepted");
  await grace.goto(baseUrl + "/invitations");
  await grace.getByText("You have no invitations waiting for an answer.").waitFor();
  await grace.context().close();
  await writer.context().close();
});

test("share an artefact from a case study; another organisation finds it, reuses it and comments", async () => {
  // An administrator curates the topics on the site: adds two, then merges one into the other.
  const keeper = await newPage();
  const keeperEmail = await registerOnSite(keeper, "Topic Keeper");
  await promoteToAdmin(keeperEmail);
  await openMenu(keeper);
  await keeper.getByRole("link", { name: "Topics" }).click();
  await keeper.getByRole("button", { name: "Add topic" }).click();
  await keeper.locator(".error-summary").waitFor();
  await checkPage(keeper, "topics-errors");
  for (const name of ["Waste", "Rubbish"]) {
    await keeper.getByLabel("Name").fill(name);
    await keeper.getByRole("button", { name: "Add topic" }).click();
    await keeper.getByText("The topic is added").waitFor();
  }
  await checkPage(keeper, "topics");
  await keeper.getByRole("link", { name: "Rubbish" }).click();
  await checkPage(keeper, "topic-curation");
  await keeper.getByLabel("Merge into").selectOption({ label: "Waste" });
  await keeper.getByRole("button", { name: "Merge" }).click();
  await keeper.getByText("Topics were merged").waitFor();
  assert.equal(await keeper.getByRole("heading", { level: 1 }).innerText(), "Waste");
  await keeper.context().close();

  // The author adds their organisation, publishes a case study and shares what they built.
  const author = await newPage();
  await registerOnSite(author, "Ava Author");
  await openMenu(author);
  await author.getByRole("link", { name: "Organisations" }).click();
  await checkPage(author, "organisations");
  await author.getByRole("link", { name: "Add your organisation" }).click();
  await author.getByRole("button", { name: "Add organisation" }).click();
  await author.locator(".error-summary").waitFor();
  await checkPage(author, "organisation-errors");
  await author.getByLabel("Name").fill("Barsetshire Council");
  await author.getByRole("button", { name: "Add organisation" }).click();
  await author.getByText("Your organisation is on Kettle, with you as its admin.").waitFor();
  await checkPage(author, "organisation");

  await author.goto(baseUrl + "/case-studies/new");
  await author.getByLabel("Title").fill("Texting residents before bin day");
  await author.getByLabel("Summary").fill("A reminder the evening before collection cut missed bins by a third.");
  await author.getByLabel("Case study", { exact: true }).fill("## What we did\n\nWe built a small reminder service.");
  await author.getByLabel("Waste").check();
  await author.getByLabel("Beta").check();
  await author.getByLabel("Organisation").selectOption({ label: "Barsetshire Council" });
  await author.getByRole("button", { name: "Save draft" }).click();
  await author.getByRole("button", { name: "Publish" }).click();
  await author.getByText("Your case study is published.").waitFor();
  await author.getByRole("link", { name: "Share an artefact from this case study" }).click();
  await checkPage(author, "artefact-new");
  await author.getByRole("button", { name: "Share artefact" }).click();
  await author.locator(".error-summary").waitFor();
  await checkPage(author, "artefact-errors");
  await author.getByLabel("Title").fill("Bin day reminder service");
  await author.getByLabel("Description").fill("Sends a text the evening before collection. *Configure rounds* in one file.");
  await author.getByRole("button", { name: "Preview" }).click();
  assert.equal(await author.locator(".preview em").innerText(), "Configure rounds");
  await author.getByLabel("Address").fill("https://code.barsetshire.example.gov.uk/bin-day");
  await author.getByLabel("Licence").fill("ogl-uk-3.0");
  await author.getByLabel("Waste").check();
  await author.getByLabel("Maintained by").selectOption({ label: "Barsetshire Council" });
  assert.ok(await author.getByLabel("Texting residents before bin day").isChecked(), "the case study is linked");
  await author.getByRole("button", { name: "Share artefact" }).click();
  await author.getByRole("heading", { level: 1, name: "Bin day reminder service" }).waitFor();
  assert.match(await author.locator(".summary-list").innerText(), /Open Government Licence v3\.0 \(OGL-UK-3\.0\)/);
  const artefactUrl = author.url();
  // An edit with a note on what changed: the page says so, and the history compares versions.
  await author.getByRole("link", { name: "Edit this artefact" }).click();
  await author.getByRole("radio", { name: "In use" }).check();
  await author.getByLabel("What changed (optional for a typo fixed)").fill("In use across the county now.");
  await author.getByRole("button", { name: "Save changes" }).click();
  await author.getByText("Your changes are saved.").waitFor();
  await author.getByRole("link", { name: "see all updates" }).click();
  await author.getByRole("heading", { level: 1, name: "All updates" }).waitFor();
  await checkPage(author, "artefact-history");
  await author.getByRole("link", { name: "See what changed from version 1 to version 2" }).click();
  await author.getByRole("heading", { level: 1, name: "What changed from version 1 to version 2" }).waitFor();
  assert.equal(await author.locator(".summary-list .diff__added").first().textContent(), "[added: In use]");
  await checkPage(author, "artefact-compare");
  await author.goto(artefactUrl);

  // Someone from another council finds it by searching, finds it useful, records reuse and comments.
  const reader = await newPage();
  await registerOnSite(reader, "Rhys Reader");
  await reader.goto(baseUrl + "/organisations/new");
  await reader.getByLabel("Name").fill("Wessex Council");
  await reader.getByRole("button", { name: "Add organisation" }).click();
  await reader.getByText("Your organisation is on Kettle, with you as its admin.").waitFor();
  await openMenu(reader);
  await reader.getByRole("link", { name: "Search" }).click();
  await reader.getByLabel("Search case studies, artefacts and organisations").fill("reminder service");
  await reader.getByLabel("Show").selectOption("ARTEFACT");
  await reader.getByRole("button", { name: "Search" }).click();
  await reader.getByRole("link", { name: "Bin day reminder service" }).click();
  await reader.getByRole("link", { name: "Texting residents before bin day" }).click();
  await reader.getByRole("button", { name: "This was useful" }).click();
  await reader.getByText("1 member found this useful.").waitFor();
  await reader.getByRole("button", { name: "Bookmark for later" }).click();
  await reader.getByRole("link", { name: "Your bookmarks" }).click();
  await reader.getByRole("link", { name: "Texting residents before bin day" }).waitFor();
  await checkPage(reader, "bookmarks");
  await reader.goto(artefactUrl);
  await reader.getByRole("button", { name: "Record reuse" }).click();
  await reader.locator(".error-summary").waitFor();
  await checkPage(reader, "artefact-reuse-errors");
  await reader.getByLabel("How did you reuse it?").fill("We run it for garden waste renewals.");
  await reader.getByRole("button", { name: "Record reuse" }).click();
  await reader.getByText("Thank you: your organisation's reuse is recorded.").waitFor();
  assert.equal(await reader.getByLabel("How did you reuse it?").inputValue(), "We run it for garden waste renewals.",
    "the form holds the reader's own story, to edit");
  await reader.getByText("This is your story; change it and record again to edit it.").waitFor();
  await reader.getByRole("button", { name: "Post comment" }).click();
  await reader.locator(".error-summary").waitFor();
  await checkPage(reader, "comment-errors");
  // Typing @ and the start of a name offers members to mention; Enter writes the handle.
  const commentField = reader.getByLabel("Comment");
  await commentField.pressSequentially("Thanks @ava-au");
  await reader.getByRole("option", { name: /^Ava Author \(@ava-author/ }).first().waitFor();
  await checkPage(reader, "mention-suggestions");
  await commentField.press("ArrowDown");
  await commentField.press("ArrowUp");
  await commentField.press("Enter");
  assert.match(await commentField.inputValue(), /^Thanks @ava-author(-\d+)? $/);
  assert.equal(await reader.getByRole("listbox", { name: "Members to mention" }).isVisible(), false, "chosen, it closes");
  // Without JavaScript, the hint's directory is where handles are found.
  const directory = await newPage({ javaScriptEnabled: false });
  await directory.goto(baseUrl + "/members?q=Ava+Au");
  await directory.getByRole("link", { name: "Ava Author" }).first().waitFor();
  await checkPage(directory, "members");
  await directory.context().close();
  await reader.getByLabel("Comment").fill("Thanks @ava-author: we changed the rounds file and it just worked.");
  await reader.getByRole("button", { name: "Post comment" }).click();
  await reader.locator(".comment .mention").waitFor();
  await checkPage(reader, "artefact");
  // Deleting one's comment asks first, showing it.
  await reader.getByRole("link", { name: /^Delete the comment from/ }).first().click();
  await reader.getByRole("heading", { level: 1, name: "Delete this comment?" }).waitFor();
  await checkPage(reader, "comment-delete");
  await reader.getByRole("link", { name: "No, keep it" }).click();
  await reader.locator(".comment .mention").waitFor();

  // The author sees the reuse and the comment, and answers.
  await author.goto(artefactUrl);
  await author.getByRole("heading", { name: "Used by 1 organisation" }).waitFor();
  assert.match(await author.locator("#reuse").innerText(), /Wessex Council[\s\S]*garden waste renewals/);
  assert.equal(await author.locator(".comment .mention").innerText(), "@ava-author");
  await author.locator("details.reply summary").first().click();
  await author.getByLabel("Your reply").fill("Glad it helped!");
  await author.getByRole("button", { name: "Post reply" }).click();
  await author.locator(".thread__replies .comment").getByText("Glad it helped!").waitFor();
  await checkPage(author, "artefact-conversation");

  // The most reused artefacts come first in the list.
  await reader.goto(baseUrl + "/artefacts");
  await reader.getByLabel("Sort by").selectOption("MOST_REUSED");
  await reader.getByRole("button", { name: "Filter" }).click();
  assert.equal(await reader.locator(".card__title").first().innerText(), "Bin day reminder service");
  await checkPage(reader, "artefacts");

  // Joining an organisation: the reader asks, the author (its admin) approves.
  await reader.goto(baseUrl + "/organisations/barsetshire-council");
  await reader.getByRole("button", { name: "Ask to join" }).click();
  await reader.getByText("You asked to join").waitFor();
  await author.goto(baseUrl + "/organisations/barsetshire-council");
  await checkPage(author, "organisation-requests");
  await author.getByRole("button", { name: "Approve Rhys Reader" }).click();
  await author.getByText("The request was approved.").waitFor();
  await reader.reload();
  await reader.getByText("You are a member of this organisation.").waitFor();
  await author.context().close();
  await reader.context().close();
});

test("sign in with a provider, then link a second one", async () => {
  const email = uniqueEmail("olive");
  const otherEmail = uniqueEmail("olive.other");
  localProvider.setProfile({ sub: `olive-${Date.now()}`, email, email_verified: true, name: "Olive Oakley" });
  otherProvider.setProfile({ sub: `olive-${Date.now()}`, email: otherEmail, email_verified: false, name: "O. Oakley" });

  // From a page, to the sign-in page (which remembers it), out to the provider and back.
  const page = await newPage();
  await page.goto(baseUrl + "/case-studies");
  await openMenu(page);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sign in" }).click();
  await page.waitForURL("**/sign-in?return_to=*");
  const button = page.getByRole("link", { name: "Sign in with Local ID" });
  assert.match(await button.getAttribute("href"), /^\/auth\/local\/start\?return_to=(%2F|\/)case-studies$/);
  await page.getByRole("link", { name: "Sign in with Other ID" }).waitFor();
  await checkPage(page, "sign-in-providers");
  await button.click();
  await page.getByRole("button", { name: "Continue as Olive Oakley" }).click();
  await page.waitForURL(baseUrl + "/case-studies");
  await openMenu(page);
  await page.getByRole("link", { name: "Olive Oakley" }).waitFor();
  assert.equal(localProvider.received.exchangesVerified, 1, "the provider checked the PKCE verifier");

  // Connect the second provider from settings.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("heading", { name: "Settings" }).waitFor();
  assert.equal(await page.getByRole("link", { name: "Connect Local ID" }).count(), 0, "already connected");
  await page.getByRole("link", { name: "Connect Other ID" }).click();
  await page.getByRole("button", { name: "Continue as O. Oakley" }).click();
  await page.waitForURL("**/settings?connected=other");
  await page.getByText(otherEmail).waitFor();
  await page.getByText(email, { exact: false }).first().waitFor();
  assert.equal(await page.getByRole("link", { name: "Connect Other ID" }).count(), 0, "now connected");
  await checkPage(page, "settings-connections");
  const identities = await page.evaluate(async () => {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ viewer { identities { provider } } }" }),
    });
    return (await response.json()).data.viewer.identities.map((i) => i.provider).sort();
  });
  assert.deepEqual(identities, ["local", "other"]);

  // Disconnect one; the other is then the only way in (no password), so it stays.
  await page.getByRole("button", { name: "Disconnect Other ID" }).click();
  await page.getByText("The provider is disconnected").waitFor();
  await page.getByRole("link", { name: "Connect Other ID" }).waitFor();
  await page.getByRole("button", { name: "Disconnect Local ID" }).click();
  const summary = page.locator(".error-summary");
  await summary.waitFor();
  assert.match(await summary.innerText(), /only way you can sign in/);
  assert.match(await page.title(), /^Error: /);
  await checkPage(page, "settings-connections-errors");

  // A callback that does not belong to a sign-in in progress ends on a page that says so.
  await page.goto(baseUrl + "/auth/local/callback?state=nope");
  await page.getByRole("heading", { level: 1 }).waitFor();
  assert.match(await page.locator("main").innerText(), /expired/i);
  await checkPage(page, "oauth-failure");
  await page.context().close();
});

test("an organiser runs a monthly series; the waitlist moves up; calendars follow a change", async () => {
  // The second Thursday of the month after next: a few weeks ahead whenever this runs,
  // and well inside the six months of occurrences a series makes at once.
  const today = new Date();
  const monthStart = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + 2, 1));
  const secondThursday = new Date(monthStart);
  secondThursday.setUTCDate(1 + ((4 - monthStart.getUTCDay() + 7) % 7) + 7);
  const day = secondThursday.toISOString().slice(0, 10);
  const title = "TeaCamp Barchester";

  // The organiser starts a group.
  const organiser = await newPage();
  await registerOnSite(organiser, "Orla Organiser");
  await openMenu(organiser);
  await organiser.getByRole("navigation").getByRole("link", { name: "Meetups", exact: true }).click();
  await organiser.getByRole("heading", { level: 1, name: "Meetups" }).waitFor();
  await checkPage(organiser, "meetups");
  await organiser.getByRole("link", { name: "Start a group" }).click();
  await organiser.getByRole("heading", { level: 1, name: "Start a meetup group" }).waitFor();
  await checkPage(organiser, "meetup-group-new");
  await organiser.getByRole("button", { name: "Start the group" }).click();
  const groupErrors = organiser.locator(".error-summary");
  await groupErrors.waitFor();
  assert.match(await organiser.title(), /^Error: /);
  assert.deepEqual(await groupErrors.locator("a").evaluateAll((links) => links.map((a) => a.getAttribute("href"))), [
    "#name",
    "#region",
  ]);
  await checkPage(organiser, "meetup-group-errors");
  await organiser.getByLabel("Name", { exact: true }).fill("Barchester Service Designers");
  await organiser.getByLabel("Region", { exact: true }).fill("South West");
  await organiser.getByLabel("About the group (optional)").fill("Tea, cake and *talking shop*.");
  await organiser.getByRole("button", { name: "Start the group" }).click();
  await organiser.getByRole("heading", { level: 1, name: "Barchester Service Designers" }).waitFor();
  const groupUrl = organiser.url();
  assert.match(groupUrl, /\/meetups\/groups\/barchester-service-designers$/);
  await checkPage(organiser, "meetup-group");

  // ... and schedules a monthly series: the second Thursday, six times, one seat.
  await organiser.getByRole("link", { name: "Schedule a meetup" }).click();
  await organiser.getByRole("heading", { level: 1, name: "Schedule a meetup" }).waitFor();
  assert.equal(await organiser.getByLabel("Time zone").inputValue(), "Europe/London");
  await checkPage(organiser, "meetup-schedule");
  await organiser.getByLabel("Title", { exact: true }).fill(title);
  await organiser.getByRole("button", { name: "Schedule", exact: true }).click();
  const scheduleErrors = organiser.locator(".error-summary");
  await scheduleErrors.waitFor();
  assert.match(await organiser.title(), /^Error: Schedule a meetup/);
  const errorLinks = await scheduleErrors.locator("a").evaluateAll((links) => links.map((a) => a.getAttribute("href")));
  for (const field of ["#venueName", "#date", "#startTime", "#endTime"]) {
    assert.ok(errorLinks.includes(field), `${field} in ${errorLinks}`);
  }
  assert.equal(await organiser.getByLabel("Title", { exact: true }).inputValue(), title, "typed values are kept");
  await checkPage(organiser, "meetup-schedule-errors");
  await organiser.getByLabel("Description (optional)").fill("Bring a mug. We talk about *what worked*.");
  await organiser.getByLabel("Time zone").selectOption("Europe/London");
  await organiser.getByLabel("Date", { exact: true }).fill(day);
  await organiser.getByLabel("Starts at", { exact: true }).fill("16:00");
  await organiser.getByLabel("Ends at", { exact: true }).fill("18:00");
  await organiser.getByRole("radio", { name: "Monthly on the same weekday" }).check();
  await organiser.getByLabel("Which weekday of the month").selectOption({ label: "Second" });
  await organiser.getByLabel("How many times (for a repeating meetup)").fill("6");
  await organiser.getByLabel("Venue", { exact: true }).fill("The Old Library");
  await organiser.getByLabel("Address", { exact: true }).fill("Cathedral Close, Barchester");
  await organiser.getByLabel("Seats (optional)").fill("1");
  // "I'm going" is ticked unless unticked; this organiser leaves the one seat to others.
  assert.equal(await organiser.getByLabel("I'm going").isChecked(), true, "the organiser goes unless they say no");
  await organiser.getByLabel("I'm going").uncheck();
  await organiser.getByRole("button", { name: "Schedule", exact: true }).click();
  await organiser.getByText("The meetup is scheduled.").waitFor();
  await organiser.getByRole("heading", { level: 1, name: title }).waitFor();
  const eventUrl = organiser.url().replace(/\?.*$/, "");
  const eventNumber = eventUrl.match(/\/meetups\/events\/(\d+)$/)?.[1];
  assert.ok(eventNumber, eventUrl);
  const summary = organiser.locator(".summary-list");
  assert.match(await summary.innerText(), /Repeats/);
  assert.match(await summary.innerText(), /, 16:00 to 18:00/, "one day named once, 24-hour times");
  assert.match(await summary.innerText(), /0 of 1 taken/);
  await checkPage(organiser, "meetup-event-organiser");

  /** Signs a new member in and opens the first occurrence from the group's list. */
  async function memberOpensTheMeetup(displayName) {
    const page = await newPage();
    await registerOnSite(page, displayName);
    await page.goto(baseUrl + "/meetups");
    await page.getByRole("link", { name: "Barchester Service Designers" }).click();
    const upcoming = page.getByRole("link", { name: title, exact: true });
    assert.ok((await upcoming.count()) >= 2, "the series' occurrences are listed");
    await upcoming.first().click();
    await page.waitForURL(eventUrl);
    return page;
  }

  // Member A takes the only seat.
  const amir = await memberOpensTheMeetup("Amir Early");
  // On a phone (390 by 844 CSS pixels, as most are), the primary action is on the first
  // screen, right under when and where, not below the description and the agenda.
  await amir.setViewportSize({ width: 390, height: 844 });
  const going = await amir.getByRole("button", { name: "I'm going" }).boundingBox();
  assert.ok(going.y + going.height <= 844, `"I'm going" ends ${Math.round(going.y + going.height)}px down an 844px screen`);
  await amir.setViewportSize(VIEWPORT);
  await amir.getByRole("button", { name: "I'm going" }).click();
  await amir.getByText("You are going.").waitFor();
  assert.match(await amir.locator(".summary-list").innerText(), /1 of 1 taken/);

  // Member B finds it full and joins the waitlist.
  const bea = await memberOpensTheMeetup("Bea Waiting");
  assert.equal(await bea.getByRole("button", { name: "I'm going" }).count(), 0, "no seat left");
  await bea.getByRole("button", { name: "Join the waitlist" }).click();
  await bea.getByText("you are number 1 on the waitlist").waitFor();
  await checkPage(bea, "meetup-event-waitlisted");
  await openMenu(bea);
  const profile = await bea.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Bea Waiting" })
    .getAttribute("href");
  const beaHandle = profile.replace(/^\/members\/@/, "");
  assert.match(beaHandle, /^bea-waiting/);

  // B's private calendar address: the meetup is not in it while B waits.
  await bea.getByRole("link", { name: "My meetups" }).first().click();
  await bea.getByRole("heading", { level: 1, name: "My meetups" }).waitFor();
  await bea.getByRole("link", { name: title }).waitFor();
  await bea.getByText("You are number 1 on the waitlist.").waitFor();
  await bea.getByRole("button", { name: "Get my calendar address" }).click();
  const address = await bea.getByRole("textbox", { name: "Your calendar address" }).inputValue();
  assert.match(address, /\/calendars\/personal\/[^/]+\.ics$/);
  await checkPage(bea, "my-meetups-calendar");
  // The address can be seen again later; making a new one is a separate, confirmed step.
  await bea.goto(baseUrl + "/meetups/mine");
  assert.equal(await bea.getByRole("textbox", { name: "Your calendar address" }).inputValue(), address, "shown again");
  await bea.getByRole("link", { name: "Make a new address…" }).click();
  await bea.getByRole("heading", { level: 1, name: "Make a new calendar address?" }).waitFor();
  await checkPage(bea, "calendar-reset-confirm");
  await bea.getByRole("link", { name: "Keep my current address" }).click();
  await bea.getByRole("heading", { level: 1, name: "My meetups" }).waitFor();
  assert.equal(await bea.getByRole("textbox", { name: "Your calendar address" }).inputValue(), address, "kept");
  const feedUrl = baseUrl + new URL(address).pathname;
  /** The meetup in B's feed: its local start and sequence, or null. */
  async function beaSees() {
    const response = await fetch(feedUrl);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /^text\/calendar/);
    const text = (await response.text()).replace(/\r\n[ \t]/g, "");
    const vevent = text
      .split("BEGIN:VEVENT")
      .slice(1)
      .map((block) => block.split("END:VEVENT")[0])
      .find((block) => block.includes(`UID:meetup-event-${eventNumber}@`));
    if (!vevent) return null;
    const start = vevent.match(/^DTSTART;TZID=Europe\/London:(\d{8}T\d{6})\r?$/m)?.[1];
    const sequence = vevent.match(/^SEQUENCE:(\d+)\r?$/m)?.[1];
    assert.ok(start && sequence, vevent);
    return { start, sequence: Number(sequence) };
  }
  assert.equal(await beaSees(), null, "a waitlisted member's feed leaves the meetup out");

  // A cannot go after all: it is full, so the seat goes to B at once, which a page
  // says first; B moves up, and the feed has the meetup.
  await amir.getByRole("link", { name: "I can't go after all" }).click();
  await amir.getByRole("heading", { level: 1, name: /^Give up your seat at/ }).waitFor();
  await checkPage(amir, "meetup-give-up");
  await amir.getByRole("button", { name: "Give up my seat" }).click();
  await amir.getByText("You said you are not going.").waitFor();
  await bea.goto(eventUrl);
  await bea.getByText("You are going.").waitFor();
  assert.match(await bea.locator(".summary-list").innerText(), /1 of 1 taken/);
  await checkPage(bea, "meetup-event-going");
  const compact = day.replaceAll("-", "");
  const before = await beaSees();
  assert.equal(before?.start, `${compact}T160000`);

  // The organiser moves it an hour later.
  await organiser.goto(eventUrl);
  await organiser.getByRole("link", { name: "Change this meetup" }).click();
  await organiser.getByRole("heading", { level: 1, name: "Change this meetup" }).waitFor();
  assert.equal(await organiser.getByLabel("Date", { exact: true }).inputValue(), day);
  assert.equal(await organiser.getByLabel("Starts at", { exact: true }).inputValue(), "16:00");
  assert.equal(await organiser.getByLabel("Seats (optional)").inputValue(), "1");
  await checkPage(organiser, "meetup-edit");
  await organiser.getByLabel("Starts at", { exact: true }).fill("17:00");
  await organiser.getByLabel("Ends at", { exact: true }).fill("19:00");
  await organiser.getByRole("button", { name: "Save changes" }).click();
  await organiser.getByText("The meetup is changed").waitFor();
  assert.match(await organiser.locator(".summary-list").innerText(), /, 17:00 to 19:00/);
  const after = await beaSees();
  assert.equal(after?.start, `${compact}T170000`);
  assert.equal(after.sequence, before.sequence + 1, "SEQUENCE goes up by one");

  // Who is going: B, on the page and in the CSV.
  await organiser.getByRole("link", { name: "Who is going" }).click();
  await organiser.getByRole("heading", { level: 1, name: "Who is going" }).waitFor();
  await organiser.getByRole("cell", { name: "Bea Waiting", exact: true }).waitFor();
  assert.equal(await organiser.getByRole("cell", { name: "Amir Early" }).count(), 0);
  await checkPage(organiser, "meetup-attendees");
  // Taking someone off asks first, on its own page; keeping them changes nothing.
  await organiser.getByRole("link", { name: "Take off Bea Waiting" }).click();
  await organiser.getByRole("heading", { level: 1, name: "Take Bea Waiting off this meetup?" }).waitFor();
  await checkPage(organiser, "meetup-remove-confirm");
  await organiser.getByRole("link", { name: "No, keep them" }).click();
  await organiser.getByRole("cell", { name: "Bea Waiting", exact: true }).waitFor();
  const csvHref = await organiser.getByRole("link", { name: "Download as CSV" }).getAttribute("href");
  const csv = await organiser.request.get(baseUrl + csvHref);
  assert.equal(csv.status(), 200);
  assert.match(csv.headers()["content-type"], /^text\/csv/);
  const bytes = await csv.body();
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], "UTF-8 with a byte order mark");
  const rows = bytes.subarray(3).toString("utf8").trim().split("\r\n");
  assert.equal(rows.length, 2, rows.join("\n"));
  assert.equal(rows[0], "status,position,display name,handle,organisations,answered,attended");
  assert.match(rows[1], new RegExp(`^going,1,"Bea Waiting","${beaHandle}","",\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2},$`));
  // Only organisers see the list.
  assert.equal((await bea.request.get(baseUrl + csvHref)).status(), 403);

  // Cancelling asks first; for a series, which meetups. Keeping it changes nothing.
  await organiser.goto(eventUrl);
  await organiser.getByRole("link", { name: "Cancel this meetup" }).click();
  await organiser.getByRole("heading", { level: 1, name: `Cancel “${title}”?` }).waitFor();
  await organiser.getByText("1 person is going.").waitFor();
  assert.equal(await organiser.getByLabel("Only this one").isChecked(), true, "this one unless chosen");
  await organiser.getByLabel("This one and all later ones (the series ends)").waitFor();
  await checkPage(organiser, "meetup-cancel-series");
  await organiser.getByRole("link", { name: "No, keep it" }).click();
  await organiser.getByRole("heading", { level: 1, name: title }).waitFor();

  // The organiser copies it to a week later, at the same time, with its agenda.
  const weekLater = new Date(Date.parse(`${day}T12:00:00Z`) + 7 * 86400000).toISOString().slice(0, 10);
  assert.equal(await organiser.getByLabel("Starts at").inputValue(), "17:00", "the time offered is this one's");
  await organiser.getByLabel("Date", { exact: true }).fill(weekLater);
  await organiser.getByRole("button", { name: "Copy the meetup" }).click();
  await organiser.getByText("The meetup is scheduled.").waitFor();
  const copyUrl = organiser.url().replace(/\?.*$/, "");
  assert.notEqual(copyUrl, eventUrl);
  assert.match(await organiser.locator(".summary-list").innerText(), /, 17:00 to 19:00/);

  // Then cancels the copy with a message, which the page shows as written, and no
  // seats or agenda form; and puts it back on.
  await organiser.getByRole("link", { name: "Cancel this meetup" }).click();
  // Whoever copies a meetup goes to the copy, unless they say otherwise.
  await organiser.getByText("1 person is going.").waitFor();
  assert.equal(await organiser.getByRole("radio").count(), 0, "a copy is not part of the series");
  await organiser.getByLabel("Message to those going and waiting (optional)")
    .fill("The room is double-booked.\nSee you the week after.");
  await organiser.getByRole("button", { name: "Cancel the meetup" }).click();
  await organiser.getByText("The meetup is cancelled.").waitFor();
  assert.equal(await organiser.locator(".quote").innerText(), "The room is double-booked.\nSee you the week after.");
  assert.equal(await organiser.locator("dt", { hasText: "Seats" }).count(), 0);
  assert.equal(await organiser.getByRole("heading", { name: "Add to the agenda" }).count(), 0);
  await checkPage(organiser, "meetup-cancelled");
  await organiser.getByRole("button", { name: "Put this meetup back on" }).click();
  await organiser.getByText("The meetup is back on.").waitFor();
  assert.equal(await organiser.locator(".quote").count(), 0);

  for (const page of [organiser, amir, bea]) await page.context().close();
});

test("an organiser builds an agenda, reorders it, copies it, and changes how often the series meets", async () => {
  // A case study to talk about, published by another member through the API.
  const adminToken = await registerAdmin("Agenda Admin");
  const topic = await journeyTopic(adminToken, "Parking and permits");
  await publishCaseStudy(adminToken, topic, {
    title: "Parking permits in a day",
    summary: "Permits issued online the same day.",
    body: "## What we did\n\nWe asked drivers.",
  });

  // A weekly series from a fortnight today, four times.
  const first = new Date(Date.now() + 14 * 86400000).toISOString().slice(0, 10);
  const page = await newPage();
  await registerOnSite(page, "Gus Organiser");
  await page.goto(baseUrl + "/meetups/new-group");
  await page.getByLabel("Name", { exact: true }).fill("Parking Practitioners");
  await page.getByLabel("Region", { exact: true }).fill("Online");
  await page.getByRole("button", { name: "Start the group" }).click();
  await page.getByRole("link", { name: "Schedule a meetup" }).click();
  await page.getByLabel("Title", { exact: true }).fill("Parking Tea");
  await page.getByLabel("Date", { exact: true }).fill(first);
  await page.getByLabel("Starts at", { exact: true }).fill("18:00");
  await page.getByLabel("Ends at", { exact: true }).fill("19:30");
  await page.getByRole("radio", { name: "Weekly" }).check();
  await page.getByLabel("How many times (for a repeating meetup)").fill("4");
  await page.getByLabel("Venue", { exact: true }).fill("The Depot");
  await page.getByRole("button", { name: "Schedule", exact: true }).click();
  await page.getByText("The meetup is scheduled.").waitFor();
  const eventUrl = page.url().replace(/\?.*$/, "");

  // The agenda: items start when the one before ends; the case study is found by words.
  const agenda = page.locator("#agenda");
  async function addItem(title, minutes, caseStudy = "") {
    await agenda.getByLabel("Title", { exact: true }).fill(title);
    await agenda.getByLabel("Minutes", { exact: true }).fill(String(minutes));
    await agenda.getByLabel("Case study it is about (optional)").fill(caseStudy);
    await agenda.getByRole("button", { name: "Add to the agenda" }).click();
  }
  await addItem("Welcome", 10);
  await page.getByText("Welcome", { exact: true }).waitFor();
  await addItem("Permits in a day", 30, "parking permits");
  await page.getByText("Permits in a day", { exact: true }).waitFor();
  await addItem("Tea", 15);
  await page.getByText("Tea", { exact: true }).waitFor();
  const times = () => agenda.locator(".agenda__time").allTextContents();
  assert.deepEqual(await times(), ["18:00", "18:10", "18:40"]);
  await agenda.getByRole("link", { name: "Parking permits in a day" }).waitFor();
  await checkPage(page, "meetup-agenda");
  // Words that match nothing are pointed out, beside the field.
  await addItem("Ghost talk", 5, "haunted libraries");
  assert.deepEqual(await errorSummary(page), ["No published case study matches “haunted libraries”: try other words from its title."]);
  await checkPage(page, "meetup-agenda-errors");

  // Reordering with buttons (forms that work without JavaScript): tea before the talk.
  await page.goto(eventUrl);
  await agenda.getByRole("button", { name: /^Move up\W+Tea$/ }).click();
  await page.waitForURL(/#agenda$/);
  assert.deepEqual(await agenda.locator(".agenda__item strong").allTextContents(), ["Welcome", "Tea", "Permits in a day"]);
  assert.deepEqual(await times(), ["18:00", "18:10", "18:25"]);
  // Changing an item on its own page: the welcome grows, and the rest move on.
  await agenda.getByRole("link", { name: /^Change\W+Welcome$/ }).click();
  await page.getByRole("heading", { level: 1, name: "Change an agenda item" }).waitFor();
  assert.equal(await page.getByLabel("Title", { exact: true }).inputValue(), "Welcome");
  await checkPage(page, "meetup-agenda-item");
  await page.getByLabel("Minutes", { exact: true }).fill("20");
  await page.getByRole("button", { name: "Save the item" }).click();
  await page.waitForURL(/#agenda$/);
  assert.deepEqual(await times(), ["18:00", "18:20", "18:35"]);

  // Copying the agenda onto the next meetup of the series.
  await agenda.getByLabel("Meetup", { exact: true }).selectOption({ index: 0 });
  await agenda.getByRole("button", { name: "Copy the agenda" }).click();
  await page.getByText("The agenda is copied onto this meetup").waitFor();
  assert.notEqual(page.url().replace(/[?#].*$/, ""), eventUrl);
  assert.deepEqual(await agenda.locator(".agenda__item strong").allTextContents(), ["Welcome", "Tea", "Permits in a day"]);

  // The series as a whole, and a new rule from the second meetup on: every two weeks.
  const second = page.url().replace(/[?#].*$/, "");
  await page.getByRole("link", { name: "See every date" }).click();
  await page.getByRole("heading", { level: 1, name: "Every date of “Parking Tea”" }).waitFor();
  assert.equal(await page.locator(".series-dates li").count(), 4);
  assert.equal(await page.getByRole("radio", { name: "Weekly" }).isChecked(), true, "the form shows the rule as it is");
  await checkPage(page, "meetup-series");
  await page.getByRole("radio", { name: "Fortnightly" }).check();
  await page.getByLabel("How many times, from the first date").fill("2");
  await page.getByLabel("Message to those whose meetup is cancelled (optional)").fill("We meet every other week now.");
  await page.getByRole("button", { name: "Change the series" }).click();
  await page.getByText("The series is changed: Every two weeks").waitFor();
  await page.getByText("1 meetup on a date it no longer has is cancelled").waitFor();
  assert.equal(await page.locator(".series-dates .tag--cancelled").count(), 1);
  await checkPage(page, "meetup-series-changed");
  // The meetup with the copied agenda kept it.
  await page.goto(second);
  assert.equal(await agenda.locator(".agenda__item").count(), 3);
  // Its change form asks which meetups to change.
  await page.getByRole("link", { name: "Change this meetup" }).click();
  assert.equal(await page.getByLabel("Only this one").isChecked(), true);
  await page.getByLabel("This one and all later ones (each keeps its own date)").waitFor();
  await checkPage(page, "meetup-edit-series");
  await page.context().close();
});

test("follow a topic; the header count rises live when another member publishes in it; read it", async () => {
  const admin = await registerAdmin("Lamp Admin");
  await api(admin, "mutation { createTopic(input: { name: \"Street lighting\" }) { topic { id } } }");
  const topics = await api(admin, "{ topics(first: 100) { edges { node { id name slug } } } }");
  const topic = topics.topics.edges.find((e) => e.node.name === "Street lighting").node;

  // Member A follows the topic with the control on its page.
  const ada = await newPage();
  await registerOnSite(ada, "Ada Follower");
  const header = ada.getByRole("navigation", { name: "Main" });
  // On a narrow screen the count shows on "Menu" too, as the folded header shows nothing else.
  const menuUnread = ada.locator(".site-menu__unread");
  if (NARROW) assert.equal(await menuUnread.isVisible(), false, "no unread count on Menu yet");
  await openMenu(ada);
  assert.equal(await header.getByRole("link", { name: "Notifications", exact: true }).count(), 1, "no unread count yet");
  await ada.goto(`${baseUrl}/topics/${topic.slug}`);
  await ada.getByText("You are not following this.").waitFor();
  await ada.getByLabel("Follow this topic").selectOption("WATCHING");
  // The page the form comes back to opens the socket and subscribes.
  const subscribed = subscription(ada);
  await ada.getByRole("button", { name: "Save how you follow this" }).click();
  await ada.getByText("You are watching this:").waitFor();
  assert.match(ada.url(), new RegExp(`/topics/${topic.slug}#follow$`));
  assert.equal(await ada.getByLabel("Follow this topic").inputValue(), "WATCHING");
  await checkPage(ada, "topic-following");
  await subscribed;
  await ada.evaluate(() => { globalThis.notReloaded = true; });

  // Member B publishes a case study in it.
  const writer = await newPage();
  const writerToken = await apiSignIn(await registerOnSite(writer, "Wyn Publisher"));
  await writer.context().close();
  const created = await api(writerToken, `mutation($input: CreateCaseStudyInput!) {
    createCaseStudy(input: $input) { caseStudy { id } userErrors { message } } }`, {
    input: {
      title: "Dimming street lights after midnight",
      summary: "Part-night lighting cut energy use by 40% with no rise in crime.",
      body: "We *measured* it.",
      phase: "LIVE",
      topicIds: [topic.id],
    },
  });
  const caseStudyId = created.createCaseStudy.caseStudy.id;
  await api(writerToken, "mutation($id: ID!) { publishCaseStudy(input: { id: $id }) { userErrors { message } } }", { id: caseStudyId });

  // A's header count rises without a reload, and screen readers hear of it. On a narrow
  // screen, with the menu folded, it rises on "Menu"; then on the link, once open.
  if (NARROW) await menuUnread.filter({ hasText: /^, 1 unread$/ }).waitFor({ timeout: 20_000 });
  await openMenu(ada);
  await header.getByRole("link", { name: /^Notifications ?, 1 unread$/ }).waitFor({ timeout: 20_000 });
  await ada.locator("[data-notifications-announcer]").filter({ hasText: "1 new notification" }).waitFor();
  assert.equal(await ada.evaluate(() => globalThis.notReloaded), true, "the page was not reloaded");
  assert.deepEqual(ada.cspViolations, [], "the socket is allowed by the Content-Security-Policy");

  // A opens the notifications and follows the link.
  await header.getByRole("link", { name: /^Notifications/ }).click();
  await ada.getByRole("heading", { level: 1, name: "Notifications" }).waitFor();
  await ada.getByText("You have 1 unread notification.").waitFor();
  const entry = ada.locator(".notification").filter({ hasText: "Dimming street lights after midnight" });
  assert.match(await entry.innerText(), /Unread/);
  await checkPage(ada, "notifications");
  await entry.getByRole("link").click();
  await ada.getByRole("heading", { level: 1, name: "Dimming street lights after midnight" }).waitFor();

  // Back in the list, A marks everything read; the count goes.
  await openMenu(ada);
  await header.getByRole("link", { name: /^Notifications/ }).click();
  await ada.getByRole("button", { name: "Mark all as read" }).click();
  await ada.getByText("Your notifications are marked as read.").waitFor();
  await ada.getByText("You have no unread notifications.").waitFor();
  if (NARROW) assert.equal(await menuUnread.isVisible(), false, "no unread count on Menu");
  await openMenu(ada);
  assert.equal(await header.getByRole("link", { name: "Notifications", exact: true }).count(), 1, "no unread count");
  assert.equal(await ada.locator("[data-unread]").isVisible(), false);
  assert.equal(await entry.innerText().then((text) => text.includes("Unread")), false);
  await checkPage(ada, "notifications-read");

  // New for you: what is new in what A follows, since the last visit.
  await ada.getByRole("link", { name: "New for you" }).click();
  await ada.getByRole("heading", { level: 1, name: "New for you" }).waitFor();
  await ada.getByRole("link", { name: /Dimming street lights after midnight/ }).waitFor();
  await checkPage(ada, "notifications-new");
  await ada.reload();
  await ada.getByText("Nothing new in what you follow since your last visit.").waitFor();

  // What A follows: the topic (and the level can change there).
  await ada.getByRole("link", { name: "What you follow" }).click();
  await ada.getByRole("heading", { level: 1, name: "What you follow" }).waitFor();
  await ada.getByRole("link", { name: "Street lighting" }).waitFor();
  await checkPage(ada, "follows");
  await ada.getByLabel("How you follow Street lighting").selectOption("DIGEST");
  await ada.getByRole("button", { name: "Save how you follow Street lighting" }).click();
  await ada.getByRole("heading", { level: 1, name: "What you follow" }).waitFor();
  assert.equal(await ada.getByLabel("How you follow Street lighting").inputValue(), "DIGEST");

  // Notification settings: each kind is a group of choices. Switch one kind off, send
  // another to the site only, and stop watching automatically.
  await ada.getByRole("navigation", { name: "Notifications and follows" }).getByRole("link", { name: "Notification settings" }).click();
  await ada.getByRole("heading", { level: 1, name: "Notification settings" }).waitFor();
  await checkPage(ada, "notification-settings");
  const comments = kindChoices(ada, "Someone comments in a conversation you follow");
  const mentions = kindChoices(ada, "Someone mentions you");
  const replies = kindChoices(ada, "Someone replies to your comment");
  assert.equal(await checkedLabel(mentions), "By email at once", "mentions are mailed at once by default");
  assert.equal(await checkedLabel(comments), "In my digest", "what you follow goes to the digest by default");
  await comments.getByLabel("Not at all").check();
  await replies.getByLabel("On the site only").check();
  await ada.getByLabel("Watch what I write and comment on").uncheck();
  await ada.getByRole("button", { name: "Save settings" }).click();
  await ada.getByText("Your notification settings have been saved.").waitFor();
  assert.equal(await checkedLabel(comments), "Not at all");
  assert.equal(await checkedLabel(replies), "On the site only");
  assert.equal(await checkedLabel(mentions), "By email at once", "a kind not changed stays as it was");
  assert.equal(await ada.getByLabel("Watch what I write and comment on").isChecked(), false);
  await checkPage(ada, "notification-settings-saved");
  await ada.context().close();
});

test("the follow control and the unread count work with JavaScript turned off", async () => {
  const admin = await registerAdmin("Pothole Admin");
  await api(admin, "mutation { createTopic(input: { name: \"Potholes\" }) { topic { id } } }");
  const topics = await api(admin, "{ topics(first: 100) { edges { node { id name slug } } } }");
  const topic = topics.topics.edges.find((e) => e.node.name === "Potholes").node;

  const page = await newPage({ javaScriptEnabled: false });
  const email = await registerOnSite(page, "Nora Script");
  const handle = (await api(await apiSignIn(email), "{ viewer { handle } }")).viewer.handle;
  await page.goto(`${baseUrl}/topics/${topic.slug}`);
  await page.getByLabel("Follow this topic").selectOption("DIGEST");
  await page.getByRole("button", { name: "Save how you follow this" }).click();
  await page.getByText("You follow this in your digest.").waitFor();
  await page.goto(baseUrl + "/notifications");
  await page.getByText("You have no notifications yet.").waitFor();
  await checkPage(page, "notifications-empty-no-js");

  // Another member follows Nora from her profile and invites her to co-author.
  const other = await newPage();
  const otherToken = await apiSignIn(await registerOnSite(other, "Otto Other"));
  await other.goto(`${baseUrl}/members/@${handle}`);
  await other.getByLabel("Follow Nora Script").selectOption("WATCHING");
  await other.getByRole("button", { name: "Save how you follow this" }).click();
  await other.getByText("You are watching this:").waitFor();
  await checkPage(other, "member-following");
  await other.context().close();
  await api(otherToken, `mutation($input: CreateCaseStudyInput!) {
    createCaseStudy(input: $input) { caseStudy { id } userErrors { message } } }`, {
    input: {
      title: "Reporting potholes with a photo",
      summary: "Residents send a photo; crews find the hole first time.",
      body: "It *works*.",
      phase: "BETA",
      topicIds: [topic.id],
      coAuthorHandles: [handle],
    },
  });

  // Each page load shows the count, written by the server: on the link, and on a narrow
  // screen on "Menu" too, which is all the folded header shows.
  const unread = page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /^Notifications ?, 1 unread$/ });
  await openMenu(page);
  for (let i = 0; i < 40 && (await unread.count()) === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    await page.reload();
    await openMenu(page);
  }
  assert.equal(await unread.count(), 1, "the header shows one unread notification");
  if (NARROW) {
    const onMenu = page.locator(".site-menu__unread:visible").filter({ hasText: /^, 1 unread$/ });
    assert.equal(await onMenu.count(), 1, "Menu shows one unread notification");
  }
  await page.getByText("You have 1 unread notification.").waitFor();
  await checkPage(page, "notifications-no-js");
  await page.getByRole("button", { name: /^Mark as read/ }).click();
  await page.getByText("You have no unread notifications.").waitFor();
  await page.context().close();
});

/** Resolves once the page's live header has subscribed over /graphql/ws. */
function subscription(page) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the page did not subscribe within 15 seconds")), 15_000);
    page.on("websocket", (socket) => {
      if (!socket.url().endsWith("/graphql/ws")) return;
      socket.on("framesent", (frame) => {
        if (String(frame.payload).includes('"subscribe"')) {
          clearTimeout(timer);
          resolve(socket);
        }
      });
    });
  });
}

/** Registers through the site, then signs in (registering does not), leaving the page
 * signed in on the home page; returns the email. */
async function registerOnSite(page, displayName) {
  const email = uniqueEmail(displayName.split(" ")[0].toLowerCase());
  await page.goto(baseUrl + "/register");
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Display name").fill(displayName);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Check your email" }).waitFor();
  await signInOnSite(page, email, PASSWORD);
  await page.getByRole("heading", { name: `Welcome back, ${displayName}` }).waitFor();
  return email;
}

async function signInOnSite(page, email, password) {
  await page.goto(baseUrl + "/sign-in");
  await page.getByLabel("Email address").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** The group of choices for one kind of notification on /settings/notifications (a
 * fieldset named by its sentence). */
function kindChoices(page, sentence) {
  return page.getByRole("group", { name: sentence, exact: true });
}

/** The label of the checked radio button in `group`. */
async function checkedLabel(group) {
  return group.locator("input[type=radio]:checked").evaluate((input) => input.labels[0].textContent.trim());
}

/** The newest message to `address` in the mail folder (its raw text) written from
 * `template` (any, unless given) that `accept` takes, waiting up to 20 seconds for one.
 * Files are `<queue id>-<template>.eml`, so their names sort in queue order. */
async function mailTo(address, { template, accept = () => true, what = "mail" } = {}) {
  const folder = path.join(dataDir, "mail");
  const deadline = Date.now() + 20_000;
  for (;;) {
    let files = [];
    try {
      files = readdirSync(folder)
        .filter((f) => f.endsWith(template ? `-${template}.eml` : ".eml"))
        .sort()
        .reverse();
    } catch {
      // no mail yet
    }
    for (const file of files) {
      const raw = readFileSync(path.join(folder, file), "utf8");
      if (!(mailHeader(raw, "To") ?? "").toLowerCase().includes(address.toLowerCase())) continue;
      if (accept(raw)) return raw;
    }
    if (Date.now() > deadline) throw new Error(`no ${what} to ${address} within 20 seconds`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The first link under `prefix` (`/reset-password/`) in the plain-text part of the
 * newest message to `address` in the mail folder, waiting up to 20 seconds for one. */
async function linkFromMail(address, prefix) {
  const find = (raw) => plainText(raw).split(/\s+/).find((word) => word.startsWith(baseUrl + prefix));
  return find(await mailTo(address, { accept: find, what: `mail with a ${prefix} link` }));
}

/** A header of a message (the first of that name), unfolded; undefined when absent. */
function mailHeader(raw, name) {
  const head = raw.slice(0, raw.search(/\r?\n\r?\n/));
  const line = new RegExp(`^${name}:[ \\t]*((?:.*)(?:\\r?\\n[ \\t].*)*)`, "im").exec(head);
  return line?.[1].replace(/\r?\n[ \t]+/g, " ").trim();
}

/** Follows the link in the mail sent on registration, in a browser of its own, and
 * confirms the address; axe checks the confirmation page as `checkAs`, if given. */
async function confirmAddress(email, checkAs) {
  const confirm = await newPage();
  await confirm.goto(await linkFromMail(email, "/verify-email/"));
  await confirm.getByRole("heading", { name: "Confirm your email address" }).waitFor();
  await confirm.getByText(`Confirm that ${email} is your email address.`).waitFor();
  if (checkAs) await checkPage(confirm, checkAs);
  await confirm.getByRole("button", { name: "Confirm my email address" }).click();
  await confirm.getByText("Your email address is confirmed.").waitFor();
  await confirm.context().close();
}

/** `kettle digest run` with the release binary, beside the running server, on the same
 * database and mail folder; returns what it printed. */
async function digestRun(...args) {
  const { spawnSync } = await import("node:child_process");
  const result = spawnSync(kettleBinary, ["digest", "run", ...args], {
    // The server's address, which the links in the mail point to.
    env: { ...process.env, KETTLE_DATA_DIR: dataDir, KETTLE_DATABASE_URL: "", KETTLE_PUBLIC_URL: baseUrl },
    encoding: "utf8",
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

/** The text/plain part of a MIME message, decoded (7bit, quoted-printable or base64):
 * enough of MIME for reading our own messages back. */
function plainText(raw) {
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1];
  const parts = boundary ? raw.split("--" + boundary) : [raw];
  for (const part of parts) {
    const split = part.search(/\r?\n\r?\n/);
    if (split < 0) continue;
    const headers = part.slice(0, split);
    if (!/content-type:\s*text\/plain/i.test(headers)) continue;
    const body = part.slice(split).trim();
    const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(headers)?.[1]?.toLowerCase();
    if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
    if (encoding === "quoted-printable") {
      const bytes = body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
      return Buffer.from(bytes, "latin1").toString("utf8");
    }
    return body;
  }
  return "";
}

/** Registers an administrator and returns an API token for them. */
async function registerAdmin(displayName) {
  const page = await newPage();
  const email = await registerOnSite(page, displayName);
  await page.context().close();
  await promoteToAdmin(email);
  return apiSignIn(email);
}

async function promoteToAdmin(email) {
  const { spawnSync } = await import("node:child_process");
  const result = spawnSync(kettleBinary, ["admin", "promote", "--email", email], {
    env: { ...process.env, KETTLE_DATA_DIR: dataDir, KETTLE_DATABASE_URL: "" },
    encoding: "utf8",
  });
  assert.equal(result.status, 0, result.stderr);
}

async function api(token, query, variables = {}) {
  const response = await fetch(baseUrl + "/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data;
}

async function apiSignIn(email) {
  const data = await api(null, "mutation($e: String!, $p: String!) { signIn(input: { email: $e, password: $p }) { token } }", {
    e: email,
    p: PASSWORD,
  });
  return data.signIn.token;
}

test("confirm the address from the mail, then forget the password and reset it from the mail", async () => {
  const NEW_PASSWORD = "teapot lanterns drift across harbours";
  // A member signed in on another device: that session must end with the reset.
  const elsewhere = await newPage();
  const email = await registerOnSite(elsewhere, "Fay Forgetful");

  // The link in the registration mail opens a page with a button; pressing it confirms.
  await confirmAddress(email, "verify-email");

  const page = await newPage();
  await page.goto(baseUrl + "/sign-in");
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await page.waitForURL("**/forgot-password");
  await checkPage(page, "forgot-password");
  await page.getByRole("button", { name: "Send the link" }).click();
  await page.locator(".error-summary").waitFor();
  assert.deepEqual(await page.locator(".error-summary a").allTextContents(), ["Enter your email address."]);
  await checkPage(page, "forgot-password-errors");
  await page.getByLabel("Email address").fill(email);
  await page.getByRole("button", { name: "Send the link" }).click();
  await page.getByRole("heading", { name: "Check your email" }).waitFor();
  await page.getByText(`If an account uses ${email}, we have sent a link to it`).waitFor();
  await checkPage(page, "forgot-password-sent");

  const reset = await linkFromMail(email, "/reset-password/");
  await page.goto(reset);
  await page.getByRole("heading", { name: "Choose a new password" }).waitFor();
  await checkPage(page, "reset-password");
  await page.getByLabel("New password").fill("password123");
  await page.getByRole("button", { name: "Save the new password" }).click();
  await page.locator(".error-summary").waitFor();
  assert.match(await page.locator("#password-error").innerText(), /harder to guess/);
  await checkPage(page, "reset-password-errors");
  await page.getByLabel("New password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Save the new password" }).click();
  await page.getByText("Your new password is saved and you are signed in.").waitFor();
  await checkPage(page, "settings-password-reset");

  // The other device was signed out; the link is spent; the new password works.
  await elsewhere.goto(baseUrl + "/settings");
  await elsewhere.waitForURL("**/sign-in?return_to=*");
  await elsewhere.context().close();
  await page.goto(reset);
  await page.getByRole("heading", { name: "This link has expired" }).waitFor();
  await checkPage(page, "link-expired");
  await page.context().close();
  const again = await newPage();
  await signInOnSite(again, email, NEW_PASSWORD);
  await again.getByRole("heading", { name: "Welcome back, Fay Forgetful" }).waitFor();
  await again.context().close();
});

test("choose a weekly digest on a day and at an hour, with the keyboard, in one's own time zone", async () => {
  const page = await newPage();
  const email = await registerOnSite(page, "Dev Weekly");
  // Digests go only to confirmed addresses: until then none is planned.
  await page.goto(baseUrl + "/settings/notifications");
  await page.getByText("No digest is planned yet. We send digests once you have confirmed your email address.").waitFor();
  await confirmAddress(email);

  // A zone half an hour off UTC, where 01:00 is the evening before in UTC: the day and
  // hour must be the member's own.
  const zone = "Asia/Kolkata";
  await page.goto(baseUrl + "/settings");
  await page.getByLabel("Time zone").selectOption(zone);
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.getByText("Your profile has been saved.").waitFor();

  // First no digest at all.
  await page.goto(baseUrl + "/settings/notifications");
  assert.equal(await page.getByLabel("Weekly", { exact: true }).isChecked(), true, "weekly is the default");
  await page.getByText(/^Your next digest: /).waitFor();
  await page.getByLabel("Never", { exact: true }).check();
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Your notification settings have been saved.").waitFor();
  assert.equal(await page.getByLabel("Never", { exact: true }).isChecked(), true);
  await page.getByText("You do not get a digest.").waitFor();

  // Then weekly, three days from today where the member is, at 01:00, chosen with the
  // keyboard alone: the arrow keys move through the radio buttons, the selects are
  // reached by their labels, and Enter on the button saves.
  const today = zonedDate(zone);
  const day = new Date(Date.UTC(today.year, today.month - 1, today.day + 3));
  const weekday = day.toLocaleDateString("en-GB", { weekday: "long", timeZone: "UTC" });
  const isoWeekday = ((day.getUTCDay() + 6) % 7) + 1;
  const expected = `${weekday} ${day.getUTCDate()} ${day.toLocaleDateString("en-GB", { month: "long", timeZone: "UTC" })} ${day.getUTCFullYear()} at 01:00`;
  await page.getByLabel("Never", { exact: true }).focus();
  await page.keyboard.press("ArrowUp");
  assert.equal(await page.getByLabel("Weekly", { exact: true }).isChecked(), true, "ArrowUp chose weekly");
  await page.getByLabel("Day", { exact: true }).focus();
  await page.getByLabel("Day", { exact: true }).selectOption({ label: weekday });
  await page.getByLabel("Time", { exact: true }).focus();
  await page.getByLabel("Time", { exact: true }).selectOption({ label: "01:00" });
  await page.getByRole("button", { name: "Save settings" }).press("Enter");
  await page.getByText("Your notification settings have been saved.").waitFor();

  // The page keeps the choice and says when the next one comes: on that weekday, at
  // that hour, in the member's zone, naming the day.
  assert.equal(await page.getByLabel("Weekly", { exact: true }).isChecked(), true);
  assert.equal(await page.getByLabel("Day", { exact: true }).inputValue(), String(isoWeekday));
  assert.equal(await page.locator("#digestWeekday option:checked").innerText(), weekday);
  assert.equal(await page.getByLabel("Time", { exact: true }).inputValue(), "1");
  const next = await page.locator("#next-digest").innerText();
  assert.equal(next, `Your next digest: ${expected} (${zone}).`, `the next ${weekday} at 01:00 in ${zone}`);
  const token = await apiSignIn(email);
  const settings = (await api(token, "{ viewer { notificationSettings { digestFrequency digestWeekday digestHour nextDigestAt } } }"))
    .viewer.notificationSettings;
  assert.equal(settings.digestFrequency, "WEEKLY");
  assert.equal(settings.digestWeekday, isoWeekday);
  assert.equal(settings.digestHour, 1);
  // 01:00 in Kolkata (UTC+5:30) is 19:30 UTC the day before.
  assert.equal(new Date(settings.nextDigestAt).toISOString(),
    new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate() - 1, 19, 30)).toISOString());
  await checkPage(page, "notification-settings-weekly-digest");
  await page.context().close();
});

test("unsubscribe from a digest's link while signed out", async () => {
  const admin = await registerAdmin("Bin Admin");
  await api(admin, "mutation { createTopic(input: { name: \"Bin collections\" }) { topic { id } } }");
  const topics = await api(admin, "{ topics(first: 100) { edges { node { id name slug } } } }");
  const topic = topics.topics.edges.find((e) => e.node.name === "Bin collections").node;

  // A confirmed member follows the topic in their digest.
  const member = await newPage();
  const email = await registerOnSite(member, "Uma Subscriber");
  await confirmAddress(email);
  await member.goto(`${baseUrl}/topics/${topic.slug}`);
  await member.getByLabel("Follow this topic").selectOption("DIGEST");
  await member.getByRole("button", { name: "Save how you follow this" }).click();
  await member.getByText("You follow this in your digest.").waitFor();
  await member.context().close();

  // Another member publishes in it.
  const writer = await newPage();
  const writerToken = await apiSignIn(await registerOnSite(writer, "Wes Writer"));
  await writer.context().close();
  const created = await api(writerToken, `mutation($input: CreateCaseStudyInput!) {
    createCaseStudy(input: $input) { caseStudy { id } userErrors { message } } }`, {
    input: {
      title: "Collecting bins every other week",
      summary: "Fortnightly rounds, with weekly food waste, raised recycling by a fifth.",
      body: "We *counted* it.",
      phase: "LIVE",
      topicIds: [topic.id],
    },
  });
  await api(writerToken, "mutation($id: ID!) { publishCaseStudy(input: { id: $id }) { userErrors { message } } }", {
    id: created.createCaseStudy.caseStudy.id,
  });

  // Send the member's digest now, by hand, as an operator would, once the server has
  // delivered the news to it (a dry run changes nothing).
  for (let i = 0; !(await digestRun("--dry-run", "--member", email)).startsWith("would send:"); i++) {
    assert.ok(i < 80, "the case study reached the member's digest within 20 seconds");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.match(await digestRun("--member", email), /^sent: /);
  const digest = await mailTo(email, { template: "digest", what: "digest" });
  assert.ok(plainText(digest).includes("Collecting bins every other week"), "the digest has the case study");
  assert.equal(mailHeader(digest, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
  const link = /^<([^>]+)>$/.exec(mailHeader(digest, "List-Unsubscribe") ?? "")?.[1];
  assert.ok(link?.startsWith(`${baseUrl}/unsubscribe/`), `an unsubscribe link: ${mailHeader(digest, "List-Unsubscribe")}`);
  const token = await apiSignIn(email);
  const digestSettings = async () =>
    (await api(token, "{ viewer { notificationSettings { digestFrequency nextDigestAt } } }")).viewer.notificationSettings;
  assert.equal((await digestSettings()).digestFrequency, "WEEKLY");

  // Opened in a browser that is not signed in, the link only asks.
  const page = await newPage();
  await page.goto(link);
  await page.getByRole("heading", { level: 1, name: "Unsubscribe from the digest?" }).waitFor();
  await page.getByText("We will stop sending you the digest.").waitFor();
  await openMenu(page);
  assert.equal(await page.getByRole("link", { name: "Sign in" }).count() > 0, true, "the browser is signed out");
  await checkPage(page, "unsubscribe-confirm");
  const untouched = await digestSettings();
  assert.equal(untouched.digestFrequency, "WEEKLY", "opening the link changes nothing");
  assert.notEqual(untouched.nextDigestAt, null, "a digest is still planned");

  // The button unsubscribes, with no session.
  await page.getByRole("button", { name: "Unsubscribe" }).click();
  await page.getByRole("heading", { level: 1, name: "You are unsubscribed" }).waitFor();
  await page.getByText("We will not send you the digest any more.").waitFor();
  await checkPage(page, "unsubscribe-done");
  const unsubscribed = await digestSettings();
  assert.equal(unsubscribed.digestFrequency, "NEVER");
  assert.equal(unsubscribed.nextDigestAt, null, "no digest is planned");

  // Signed in, the member's settings say so.
  await signInOnSite(page, email, PASSWORD);
  await page.getByRole("heading", { name: "Welcome back, Uma Subscriber" }).waitFor();
  await page.goto(baseUrl + "/settings/notifications");
  assert.equal(await page.getByLabel("Never", { exact: true }).isChecked(), true);
  await page.getByText("You do not get a digest.").waitFor();
  await page.context().close();
});

/** Today's date in `zone`: { year, month (1-12), day }. */
function zonedDate(zone) {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "numeric", day: "numeric" })
    .formatToParts(new Date());
  const part = (type) => Number(parts.find((p) => p.type === type).value);
  return { year: part("year"), month: part("month"), day: part("day") };
}

// ---------------------------------------------------------------------------------------
// Moderation and data rights (issue 13)

/** A topic for a journey's case studies, made by an admin through the API; its id. */
async function journeyTopic(adminToken, name) {
  const data = await api(adminToken, "mutation($n: String!) { createTopic(input: { name: $n }) { topic { id } userErrors { message } } }", {
    n: name,
  });
  assert.deepEqual(data.createTopic.userErrors, []);
  return data.createTopic.topic.id;
}

/** Publishes a case study through the API; returns its site address. */
async function publishCaseStudy(token, topicId, { title, summary, body }) {
  const created = await api(token, `mutation($input: CreateCaseStudyInput!) {
    createCaseStudy(input: $input) { caseStudy { id } userErrors { message } } }`, {
    input: { title, summary, body, phase: "LIVE", topicIds: [topicId] },
  });
  assert.deepEqual(created.createCaseStudy.userErrors, []);
  const id = created.createCaseStudy.caseStudy.id;
  const published = await api(token, "mutation($id: ID!) { publishCaseStudy(input: { id: $id }) { userErrors { message } } }", { id });
  assert.deepEqual(published.publishCaseStudy.userErrors, []);
  const [kind, number] = Buffer.from(id, "base64url").toString("utf8").split(":");
  assert.equal(kind, "CaseStudy");
  return `${baseUrl}/case-studies/${number}`;
}

/** The error summary's messages, once it is shown. */
async function errorSummary(page) {
  await page.locator(".error-summary").waitFor();
  return page.locator(".error-summary a").allTextContents();
}

test("a member reports a case study; a moderator hides it with a reason; its author sees why, others a placeholder", async () => {
  const admin = await registerAdmin("Flag Admin");
  const topicId = await journeyTopic(admin, "Housing repairs");

  // Member A publishes a case study.
  const author = await newPage();
  const authorToken = await apiSignIn(await registerOnSite(author, "Abe Author"));
  const title = "Booking damp and mould repairs online";
  const text = "Tenants call 07700 900123 to reach our surveyor directly.";
  const url = await publishCaseStudy(authorToken, topicId, {
    title,
    summary: "Tenants book a survey slot themselves; first visits fix more.",
    body: `## What we did\n\n${text}`,
  });

  // A moderator, made one by an admin.
  const moderator = await newPage();
  const moderatorEmail = await registerOnSite(moderator, "Mona Moderator");
  const moderatorId = (await api(await apiSignIn(moderatorEmail), "{ viewer { id } }")).viewer.id;
  const role = await api(admin, `mutation($input: SetMemberRoleInput!) {
    setMemberRole(input: $input) { member { role } userErrors { message } } }`, {
    input: { memberId: moderatorId, role: "MODERATOR", reason: "Volunteered to moderate housing topics." },
  });
  assert.equal(role.setMemberRole.member.role, "MODERATOR");

  // Member B reads it and reports it: first without a reason, then with one and a note.
  const reporter = await newPage();
  await registerOnSite(reporter, "Bea Reporter");
  await reporter.goto(url);
  await reporter.getByRole("heading", { level: 1, name: title }).waitFor();
  await reporter.locator("#report-link").click();
  await reporter.waitForURL("**/report?target=*");
  await reporter.getByRole("heading", { level: 1, name: "Report this to the moderators" }).waitFor();
  await reporter.getByText(`You are reporting the case study “${title}”.`).waitFor();
  await checkPage(reporter, "report");
  await reporter.locator("#report-submit").click();
  assert.deepEqual(await errorSummary(reporter), ["Choose why you are reporting it."]);
  assert.equal(await reporter.title(), "Error: Report this to the moderators – Kettle");
  await checkPage(reporter, "report-errors");
  await reporter.getByLabel("Personal data exposed").check();
  await reporter.getByLabel(/What is wrong with it\?/).fill("It shows the surveyor's personal mobile number.");
  await reporter.locator("#report-submit").click();
  await reporter.locator("#report-done").waitFor();
  assert.match(await reporter.locator("#report-done").innerText(), /You reported the case study “Booking damp and mould repairs online”/);
  await checkPage(reporter, "report-done");
  // Reporting it again is not a second flag.
  await reporter.goto(url);
  await reporter.locator("#report-link").click();
  await reporter.getByLabel("Spam").check();
  await reporter.locator("#report-submit").click();
  await reporter.getByText(`You had already reported the case study “${title}”.`).waitFor();
  // Its author is not offered the link.
  await author.goto(url);
  await author.getByRole("heading", { level: 1, name: title }).waitFor();
  assert.equal(await author.locator("#report-link").count(), 0, "no report link for the author");

  // The moderator finds it in the queue and opens the review.
  await moderator.goto(baseUrl + "/");
  await openMenu(moderator);
  await moderator.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Moderation" }).click();
  await moderator.waitForURL("**/moderation");
  const queue = moderator.locator("#moderation-queue");
  await queue.waitFor();
  const row = queue.locator("tbody tr").filter({ hasText: title });
  assert.equal(await row.count(), 1, "the case study is in the queue once");
  assert.match(await row.innerText(), /Personal data/);
  // On a phone the rows stack and the headings are off screen: each value names its column.
  const labels = await row.locator("td").evaluateAll((cells) => cells.map((td) => getComputedStyle(td, "::before").content));
  if (VIEWPORT.width < 640) assert.match(labels.join(" "), /Flags.*Weight.*Reasons/);
  else assert.ok(labels.every((label) => label === "none" || label === "normal"), labels.join(" "));
  await checkPage(moderator, "moderation-queue");
  await row.getByRole("link").click();
  await moderator.waitForURL(/\/moderation\/reviews\/\d+$/);
  const reviewUrl = moderator.url();
  const flags = moderator.locator("#review-flags li");
  assert.equal(await flags.count(), 1, "one flag");
  assert.match(await flags.first().innerText(), /Personal data from Bea Reporter .*It shows the surveyor's personal mobile number\./);
  assert.ok((await moderator.locator("main").innerText()).includes(text), "the moderator reads what was written");
  await checkPage(moderator, "moderation-review");

  // Without a decision, the form says so.
  await moderator.locator("#decide-submit").click();
  assert.deepEqual(await errorSummary(moderator), ["Choose what to do."]);
  await checkPage(moderator, "moderation-review-errors");

  // The decision, with the keyboard alone: Space chooses the first option (hide), Tab
  // leaves the radio group for the reason, and Tab again reaches the button.
  const reason = "It showed a member of staff's personal phone number.";
  await moderator.locator("#decide-form #decision").focus();
  await moderator.keyboard.press("Space");
  assert.equal(await moderator.getByLabel("Hide it").isChecked(), true, "Space chose Hide");
  await moderator.keyboard.press("Tab");
  assert.equal(await moderator.evaluate(() => document.activeElement.id), "reason", "Tab went from the choices to the reason");
  await moderator.keyboard.type(reason);
  for (let i = 0; i < 20 && (await moderator.evaluate(() => document.activeElement.id)) !== "decide-submit"; i++) {
    await moderator.keyboard.press("Tab");
  }
  assert.equal(await moderator.evaluate(() => document.activeElement.id), "decide-submit", "Tab reaches the button");
  await moderator.keyboard.press("Enter");
  await moderator.locator("#decided-notice").waitFor();
  assert.equal(await moderator.locator("#moderation-queue tbody tr").filter({ hasText: title }).count(), 0, "gone from the queue");
  await checkPage(moderator, "moderation-queue-decided");
  await moderator.goto(reviewUrl);
  await moderator.locator("#review-decided").waitFor();
  const decided = await moderator.locator("#review-decided").innerText();
  assert.match(decided, /Mona Moderator/);
  assert.ok(decided.includes(reason), `the reason is recorded: ${decided}`);
  assert.equal(await moderator.locator("#decide-form").count(), 0, "a decided review has no form");
  await checkPage(moderator, "moderation-review-decided");

  // The author still sees it, with the notice and the reason.
  await author.goto(url);
  await author.getByRole("heading", { level: 1, name: title }).waitFor();
  const notice = await author.locator("#hidden-notice").innerText();
  assert.match(notice, /Hidden by the moderators\./);
  assert.ok(notice.includes(`Reason: ${reason}`), notice);
  assert.ok((await author.locator(".prose").innerText()).includes(text), "the author reads the text");
  await checkPage(author, "case-study-hidden-author");

  // The reporter, and someone signed out, see a placeholder and not the text.
  const anonymous = await newPage();
  for (const [page, name] of [[reporter, "case-study-hidden"], [anonymous, "case-study-hidden-signed-out"]]) {
    await page.goto(url);
    await page.getByRole("heading", { level: 1, name: "Hidden by the moderators" }).waitFor();
    assert.equal((await page.locator("#hidden-notice").innerText()).trim(), "This was hidden by the moderators.");
    const html = await page.content();
    assert.equal(html.includes(text), false, "the text is not sent");
    assert.equal(html.includes(title), false, "nor the title");
    assert.equal(html.includes(reason), false, "nor the reason");
    await checkPage(page, name);
  }

  // Both are told the outcome, without naming the moderator or the reporter.
  for (const [page, summary] of [
    [author, `The moderators hid your case study “${title}”`],
    [reporter, `The moderators hid the case study “${title}”, which you reported`],
  ]) {
    const entry = page.locator(".notification").filter({ hasText: summary });
    await page.goto(baseUrl + "/notifications");
    for (let i = 0; i < 80 && (await entry.count()) === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await page.reload();
    }
    assert.equal(await entry.count(), 1, `notified: ${summary}`);
    assert.equal(/Mona Moderator|Bea Reporter/.test(await entry.innerText()), false, "no names");
  }
  for (const page of [author, moderator, reporter, anonymous]) await page.context().close();
});

test("a member asks for a copy of their data and downloads it", async () => {
  const admin = await registerAdmin("Export Admin");
  const topicId = await journeyTopic(admin, "Council tax");
  const page = await newPage();
  const email = await registerOnSite(page, "Eli Exporter");
  const title = "Paying council tax in ten instalments";
  await publishCaseStudy(await apiSignIn(email), topicId, {
    title,
    summary: "Spreading the bill over ten months cut arrears.",
    body: "We *asked* residents first.",
  });

  await openMenu(page);
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("link", { name: "Download a copy of your data" }).click();
  await page.waitForURL("**/settings/data");
  await page.getByRole("heading", { level: 1, name: "Your data" }).waitFor();
  await page.getByText("You have no exports.").waitFor();
  await checkPage(page, "settings-data");
  await page.getByRole("button", { name: "Ask for a copy of your data" }).click();
  await page.getByText("We are preparing your data.").waitFor();

  // Built in the background: reload until the link is there.
  const link = page.getByRole("link", { name: /^Download/ });
  for (let i = 0; i < 80 && (await link.count()) === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    await page.reload();
  }
  assert.equal(await link.count(), 1, "the export was ready within 20 seconds");
  assert.match(await page.locator("table").innerText(), /Ready/);
  await checkPage(page, "settings-data-ready");

  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  assert.equal(download.suggestedFilename(), "kettle-personal-data.json");
  const raw = readFileSync(await download.path(), "utf8");
  const exported = JSON.parse(raw);
  assert.equal(exported.format, "kettle-personal-data/1");
  const profile = exported.sections["members.id"];
  assert.equal(profile.length, 1);
  assert.equal(profile[0].email, email);
  assert.equal(profile[0].display_name, "Eli Exporter");
  assert.ok(exported.sections["case_studies.author_id"].some((row) => row.title === title), "the case study is in it");
  assert.equal(/argon2|kpat_/i.test(raw), false, "no password hash or token secret");

  // The link is no use to anyone else, signed in or not.
  const href = await link.getAttribute("href");
  const stranger = await newPage();
  const strangerResponse = await stranger.goto(new URL(href, baseUrl).href);
  assert.notEqual(strangerResponse.headers()["content-type"], "application/json", "signed out, no export");
  await registerOnSite(stranger, "Sid Stranger");
  const otherResponse = await stranger.goto(new URL(href, baseUrl).href);
  assert.equal(otherResponse.status(), 404, "another member's link is not found");
  await stranger.context().close();
  await page.context().close();
});

test("a member deletes their account; what they published stays, by a former member", async () => {
  const admin = await registerAdmin("Erasure Admin");
  const topicId = await journeyTopic(admin, "Libraries");
  const page = await newPage();
  const email = await registerOnSite(page, "Dora Departing");
  const token = await apiSignIn(email);
  const title = "Opening libraries without staff in the evening";
  const url = await publishCaseStudy(token, topicId, {
    title,
    summary: "Members let themselves in with their card after six.",
    body: "Visits in the evening *doubled*.",
  });

  await page.goto(baseUrl + "/settings");
  await page.getByRole("link", { name: "delete your account" }).click();
  await page.waitForURL("**/settings/delete");
  await page.getByRole("heading", { level: 1, name: "Delete your account" }).waitFor();
  await checkPage(page, "settings-delete");

  // The wrong password: an error, and nothing is deleted.
  await page.getByLabel("Enter your password to confirm").fill("not my password at all");
  await page.getByRole("button", { name: "Delete my account" }).click();
  const problems = await errorSummary(page);
  assert.equal(problems.length, 1, problems.join());
  assert.equal(await page.title(), "Error: Delete your account – Kettle");
  assert.equal(await page.getByLabel("Enter your password to confirm").inputValue(), "", "passwords are not sent back");
  await checkPage(page, "settings-delete-errors");
  assert.equal((await api(token, "{ viewer { displayName } }")).viewer.displayName, "Dora Departing", "still there");

  // The right one: signed out, with a confirmation.
  await page.getByLabel("Enter your password to confirm").fill(PASSWORD);
  await page.getByRole("button", { name: "Delete my account" }).click();
  await page.waitForURL(baseUrl + "/?account_deleted=1");
  await page.getByRole("status").filter({ hasText: /account (has been|is) deleted/i }).waitFor();
  const account = page.getByRole("navigation", { name: "Main" });
  await openMenu(page);
  await account.getByRole("link", { name: "Sign in" }).waitFor();
  assert.equal(await account.getByRole("link", { name: "Settings" }).count(), 0, "signed out");
  await checkPage(page, "account-deleted");
  const gone = await fetch(baseUrl + "/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: "{ viewer { id } }" }),
  }).then((r) => r.json());
  assert.ok(gone.errors !== undefined || gone.data.viewer === null, `the API token stopped working: ${JSON.stringify(gone)}`);

  // Signing in again fails.
  await signInOnSite(page, email, PASSWORD);
  await page.locator(".error-summary").waitFor();
  await openMenu(page);
  await account.getByRole("link", { name: "Sign in" }).waitFor();
  assert.equal(await account.getByRole("link", { name: "Settings" }).count(), 0, "not signed in");

  // The case study still reads, by a former member.
  await page.goto(url);
  await page.getByRole("heading", { level: 1, name: title }).waitFor();
  const by = page.locator(".summary-list__row").filter({ has: page.locator("dt", { hasText: "By" }) }).locator("dd");
  assert.equal((await by.innerText()).trim(), "a former member");
  assert.equal((await page.content()).includes("Dora Departing"), false, "the name is gone");
  await checkPage(page, "case-study-former-member");
  await page.context().close();
});

test("the privacy notice is linked from every page's footer", async () => {
  const page = await newPage();
  await page.goto(baseUrl + "/case-studies");
  await page.getByRole("contentinfo").getByRole("link", { name: "Privacy and cookies" }).click();
  await page.waitForURL("**/privacy");
  await page.getByRole("heading", { level: 1, name: "Privacy" }).waitFor();
  for (const heading of ["Cookies", "What we store about you", "How long we keep it", "Get a copy of your data", "Delete your account"]) {
    await page.getByRole("heading", { level: 2, name: heading }).waitFor();
  }
  // The cookies it lists are the ones the site sets, and no others.
  const listed = await page.locator("main").innerText();
  await registerOnSite(page, "Pia Private");
  const cookies = (await page.context().cookies()).map((c) => c.name);
  assert.ok(cookies.length > 0, "signing in set a cookie");
  for (const name of cookies) assert.ok(listed.includes(name), `the notice lists the cookie ${name}`);
  await checkPage(page, "privacy");
  await page.context().close();
});

test("an admin suspends a member from their page; the audit log lists it; the member is told why", async () => {
  const admin = await newPage();
  const adminEmail = await registerOnSite(admin, "Ari Admin");
  await promoteToAdmin(adminEmail);
  const member = await newPage();
  const memberEmail = await registerOnSite(member, "Sam Suspended");
  const handle = (await api(await apiSignIn(memberEmail), "{ viewer { handle } }")).viewer.handle;

  await admin.goto(`${baseUrl}/members/@${handle}`);
  await admin.getByRole("heading", { level: 2, name: "Moderation" }).waitFor();
  await checkPage(admin, "member-moderation");
  await admin.getByRole("button", { name: "Suspend" }).click();
  await admin.locator(".error-summary").waitFor();
  await checkPage(admin, "member-suspend-errors");
  const reason = "Posted the same advert in twelve threads.";
  await admin.getByLabel("Why suspend Sam Suspended").fill(reason);
  await admin.getByRole("button", { name: "Suspend" }).click();
  await admin.getByText("Sam Suspended is suspended and has been signed out everywhere.").waitFor();
  assert.match(await admin.locator("section[aria-labelledby=moderation]").innerText(), /Posted the same advert in twelve threads\./);
  await checkPage(admin, "member-suspended");

  // The audit log lists it, and the member page links to what was done about them.
  await admin.getByRole("link", { name: "What moderators did about Sam Suspended" }).click();
  await admin.getByRole("heading", { level: 1, name: "Audit log" }).waitFor();
  const entries = admin.locator("table tbody tr");
  assert.equal(await entries.count(), 1, "one entry about the member");
  const entry = await entries.first().innerText();
  assert.match(entry, /Ari Admin/);
  assert.match(entry, /Sam Suspended/);
  assert.ok(entry.includes(reason), entry);
  await checkPage(admin, "admin-audit");

  // The member's session has ended; signing in shows the reason.
  await member.goto(baseUrl + "/settings");
  await member.waitForURL("**/sign-in?return_to=*");
  await signInOnSite(member, memberEmail, PASSWORD);
  await member.locator(".error-summary").waitFor();
  assert.ok((await member.locator(".error-summary").innerText()).includes(reason), "the member is told why");
  await checkPage(member, "sign-in-suspended");
  await admin.context().close();
  await member.context().close();
});

// ---------------------------------------------------------------------------------------
// Small screens (WCAG 1.4.10 Reflow)

test("a long word, a long URL, a wide table and a long code block do not make a page scroll sideways at 320px", async () => {
  const admin = await registerAdmin("Rhea Reflow");
  const topicId = await journeyTopic(admin, "Small screens");
  const word = "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch";
  const longUrl = `https://www.example.gov.uk/${"a-very-long-path-segment-".repeat(6)}end?with=a&query=string`;
  const columns = ["Service", "Channel", "Monthly volume", "Cost per transaction", "Satisfaction", "Completion rate"];
  const code = `const outcome = await submitTheApplicationOnBehalfOfTheResident({ reference: "${"X".repeat(60)}" });`;
  const table = [
    `| ${columns.join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    `| ${columns.map((c) => `${c} figures for the whole of the last financial year`).join(" | ")} |`,
  ].join("\n");
  const body = [`# ${word}`, `The guidance is at <${longUrl}>.`, table, "```\n" + code + "\n```"].join("\n\n");
  const url = await publishCaseStudy(admin, topicId, {
    title: `How ${word} moved its forms online`,
    summary: `Read more at ${longUrl}`,
    body,
  });

  const page = await newPage();
  await page.goto(url);
  await page.getByRole("heading", { level: 1, name: `How ${word} moved its forms online` }).waitFor();
  // checkPage checks reflow too; this says so here, where the content is the point.
  await page.setViewportSize({ width: REFLOW_WIDTH, height: 640 });
  const root = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(root[0] <= root[1], `the page is ${root[0]}px wide in ${root[1]}px`);

  // The code block and the table scroll in regions of their own, which are labelled and
  // which the keyboard reaches and scrolls.
  const codeRegion = page.getByRole("region", { name: "Code block" });
  const tableRegion = page.getByRole("region", { name: "Table" });
  assert.equal(await codeRegion.count(), 1);
  assert.equal(await tableRegion.count(), 1);
  assert.equal((await codeRegion.innerText()).trim(), code);
  for (const region of [codeRegion, tableRegion]) {
    assert.ok(await region.evaluate((e) => e.scrollWidth > e.clientWidth), "the region is narrower than what it holds");
  }
  let tabs = 0;
  while (!(await codeRegion.evaluate((e) => e === document.activeElement)) && tabs < 40) {
    await page.keyboard.press("Tab");
    tabs += 1;
  }
  assert.ok(tabs < 40, "Tab reaches the code block");
  for (let i = 0; i < 5; i++) await page.keyboard.press("ArrowRight");
  await page.waitForFunction(() => document.activeElement.scrollLeft > 0);
  await page.setViewportSize(VIEWPORT);
  await checkPage(page, "case-study-reflow");
  await page.context().close();
});

test("the header is one row at 1280px; at 320px its menu opens and closes without JavaScript", async () => {
  const page = await newPage({ javaScriptEnabled: false });
  await registerOnSite(page, "Hal Header");
  await page.goto(baseUrl + "/case-studies");
  const header = page.locator(".site-header__inner");
  const menu = page.locator(".site-menu > summary");
  const nav = page.getByRole("navigation", { name: "Main" });
  const links = nav.getByRole("link");
  const caseStudies = nav.getByRole("link", { name: "Case studies", exact: true });

  // Wide: every link shows, beside the name, in one row; no "Menu". (Read at 1280px
  // whatever size the journeys run at: narrower, the links are folded away.)
  await page.setViewportSize({ width: 1280, height: 800 });
  const names = await links.allTextContents();
  assert.deepEqual(names.slice(0, 3), ["Case studies", "Artefacts", "Meetups"]);
  assert.equal(await menu.isVisible(), false, "no Menu button at 1280px");
  const name = await page.locator(".site-header__name").boundingBox();
  for (const link of await links.all()) {
    assert.ok(await link.isVisible(), `${await link.innerText()} shows at 1280px`);
    const box = await link.boundingBox();
    const middle = box.y + box.height / 2;
    assert.ok(middle > name.y && middle < name.y + name.height, `${await link.innerText()} is in the name's row`);
  }
  const signOut = await page.getByRole("button", { name: "Sign out" }).boundingBox();
  assert.ok(signOut.y < name.y + name.height, "Sign out is in the name's row");

  // Narrow: only "Menu", a button with a name that the keyboard opens and closes; the
  // links keep their order.
  await page.setViewportSize({ width: 320, height: 640 });
  assert.ok(await menu.isVisible());
  assert.equal(await caseStudies.isVisible(), false, "the links are folded away");
  const collapsedHeight = (await header.boundingBox()).height;
  assert.ok(collapsedHeight < 80, `the header is one row (${collapsedHeight}px)`);
  await page.keyboard.press("Tab"); // the skip link
  await page.keyboard.press("Tab"); // the name
  await page.keyboard.press("Tab");
  assert.equal(await page.locator(".site-menu > summary:focus").count(), 1, "Menu comes after the name");
  await page.keyboard.press("Enter");
  assert.ok(await caseStudies.isVisible(), "Enter opens the menu");
  assert.deepEqual(await links.allTextContents(), names);
  await page.keyboard.press("Tab");
  assert.equal(await page.locator(":focus").innerText(), "Case studies");
  await checkPage(page, "header-menu-open");
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Enter");
  assert.equal(await caseStudies.isVisible(), false, "Enter closes it again");
  await page.context().close();
});

test("every page visited was checked", () => {
  for (const name of ["home-signed-out", "register", "register-errors", "sign-in", "settings", "member-profile", "not-found",
    "case-study-new", "case-study-errors", "case-study-preview", "case-study", "case-studies", "topic", "search",
    "organisations", "organisation-errors", "organisation", "organisation-requests", "artefact-new", "artefact-errors",
    "artefact-history", "artefact-compare", "artefact", "mention-suggestions", "members", "artefact-reuse-errors", "comment-errors", "artefact-conversation", "artefacts", "topics-errors",
    "topics", "topic-curation", "bookmarks", "sign-in-providers", "settings-connections", "settings-connections-errors",
    "oauth-failure", "meetups", "meetup-group-new", "meetup-group-errors", "meetup-group", "meetup-schedule",
    "meetup-schedule-errors", "meetup-event-organiser", "meetup-event-waitlisted", "my-meetups-calendar",
    "calendar-reset-confirm",
    "meetup-event-going", "meetup-edit", "meetup-attendees", "meetup-remove-confirm", "coauthor-invitations", "coauthor-accepted",
    "topic-following", "notifications", "notifications-read", "notifications-new", "follows", "notification-settings",
    "notification-settings-saved", "notifications-empty-no-js", "member-following", "notifications-no-js",
    "check-email", "verify-email", "forgot-password", "forgot-password-errors", "forgot-password-sent", "reset-password",
    "reset-password-errors", "settings-password-reset", "link-expired", "notification-settings-weekly-digest",
    "unsubscribe-confirm", "unsubscribe-done", "report", "report-errors", "report-done", "moderation-queue",
    "moderation-review", "moderation-review-errors", "moderation-queue-decided", "moderation-review-decided",
    "case-study-hidden-author", "case-study-hidden", "case-study-hidden-signed-out", "settings-data",
    "settings-data-ready", "settings-delete", "settings-delete-errors", "account-deleted", "case-study-former-member",
    "privacy", "member-moderation", "member-suspend-errors", "member-suspended", "admin-audit", "sign-in-suspended",
    "case-study-reflow", "header-menu-open", "case-study-history", "case-study-compare", "meetup-give-up",
    "meetup-cancel-series", "meetup-cancelled", "meetup-agenda", "meetup-agenda-errors", "meetup-agenda-item",
    "meetup-series", "meetup-series-changed", "meetup-edit-series", "case-study-delete", "comment-delete", "case-study-image", "settings-images", "image-delete"]) {
    assert.ok(checked.has(name), `${name} was checked with axe`);
  }
});

/** A PNG of `width` × `height`, a gradient, made with zlib alone. */
function png(width, height) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB, no interlace
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      rows.set([x % 256, y % 256, 150], y * (width * 3 + 1) + 1 + x * 3);
    }
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]);
}
