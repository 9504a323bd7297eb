// Node side of tests/conformance/run: drives the http-cache-tests client and scores its
// results with the suite's own code (client/runner.mjs, lib/display.mjs, tests/index.mjs),
// imported from the installed package so the classification is exactly the suite's.
//
//   node conformance.mjs free-port                         print a free loopback TCP port
//   node conformance.mjs wait-port PORT SECONDS [PID]      exit 0 once 127.0.0.1:PORT accepts
//   node conformance.mjs run PKG BASE_URL TIMEOUT_MS       run the suite, print results JSON
//   node conformance.mjs report PKG RESULTS [--json OUT] [--baseline FILE] [--check]

import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const [mode, ...args] = process.argv.slice(2)

function die (msg, code = 2) {
  process.stderr.write(`conformance: ${msg}\n`)
  process.exit(code)
}

function load (pkg, rel) {
  return import(pathToFileURL(path.join(pkg, rel)).href)
}

function freePort () {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address()
    srv.close(() => console.log(port))
  })
}

// Gives up early when the process that should be listening (pid) has gone.
function waitPort (port, seconds, pid) {
  const deadline = Date.now() + seconds * 1000
  const alive = () => {
    try {
      process.kill(Number(pid), 0)
      return true
    } catch {
      return false
    }
  }
  const attempt = () => {
    const sock = net.connect({ host: '127.0.0.1', port: Number(port) })
    sock.once('connect', () => { sock.destroy(); process.exit(0) })
    sock.once('error', () => {
      sock.destroy()
      if (Date.now() > deadline || (pid && !alive())) process.exit(1)
      setTimeout(attempt, 50)
    })
  }
  attempt()
}

// Same test selection as the suite's cli.mjs (index plus the surrogate-control tests, run as
// a shared cache rather than a browser), with one difference: each request gets a time limit
// so a proxy that never answers fails that test instead of stalling the whole run.
async function run (pkg, base, timeoutMs) {
  const fetch = createRequire(path.join(pkg, 'package.json'))('node-fetch')
  const { runTests, getResults } = await load(pkg, 'client/runner.mjs')
  const tests = (await load(pkg, 'tests/index.mjs')).default
  const surrogate = (await load(pkg, 'tests/surrogate-control.mjs')).default
  const limited = (url, init = {}) => fetch(url, { ...init, timeout: Number(timeoutMs) })
  await runTests([...tests, surrogate], limited, false, base)
  console.log(JSON.stringify(getResults(), null, 2))
}

// The suite's result types (lib/display.mjs keeps them private), keyed by their text symbol.
const symbolClass = {
  '✅': 'pass',
  '⛔️': 'fail',
  '⚠️': 'optional_fail',
  Y: 'yes',
  N: 'no',
  '🔹': 'setup_fail',
  '⁉️': 'harness_fail',
  '⚪️': 'dependency_fail',
  '↻': 'retry',
  '-': 'untested'
}

function readBaseline (file) {
  const base = {}
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^\s*(required|optimal)\s*=\s*(\d+)\s*$/)
    if (m) base[m[1]] = Number(m[2])
  }
  if (base.required === undefined || base.optimal === undefined) {
    die(`${file}: needs the lines required=N and optimal=M`)
  }
  return base
}

function detailOf (result, test, results, display, suites) {
  if (result.result === 'dependency_fail') {
    const unmet = test.depends_on.filter(dep =>
      !['pass', 'yes'].includes(symbolClass[display.determineTestResult(suites, dep, results)[2]]))
    return `depends on ${unmet.join(', ')}, which did not pass`
  }
  if (result.result === 'untested') {
    return test.browser_only ? 'browser-only test, not run against a proxy' : 'no result'
  }
  const raw = results[test.id]
  return Array.isArray(raw) ? `${raw[0]}: ${raw[1]}` : ''
}

async function report (pkg, resultsFile, opts) {
  const display = await load(pkg, 'lib/display.mjs')
  const suites = (await load(pkg, 'tests/index.mjs')).default
  const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version
  let results
  try {
    results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
  } catch (err) {
    die(`cannot read the client's results (${err.message})`)
  }

  const rows = []
  const score = {
    required: { passed: 0, total: 0 },
    optimal: { passed: 0, total: 0 },
    check: { yes: 0, no: 0, total: 0 }
  }
  for (const suite of suites) {
    for (const test of suite.tests) {
      const kind = test.kind || 'required'
      const symbol = display.determineTestResult(suites, test.id, results)
      const cls = symbolClass[symbol[2]]
      if (cls === undefined) die(`unknown result symbol ${symbol[2]} for ${test.id}`)
      const row = { id: test.id, suite: suite.id, kind, name: test.name, result: cls }
      row.detail = detailOf(row, test, results, display, suites)
      rows.push(row)
      score[kind].total++
      if (kind === 'check') {
        if (cls === 'yes') score.check.yes++
        else if (cls === 'no') score.check.no++
      } else if (cls === 'pass') {
        score[kind].passed++
      }
    }
  }

  const r = score.required
  const o = score.optimal
  console.log(`http-cache-tests ${version}`)
  console.log(`required: ${r.passed}/${r.total}  optimal: ${o.passed}/${o.total}`)
  console.log(`check (information only): ${score.check.yes} yes, ${score.check.no} no, ` +
    `${score.check.total - score.check.yes - score.check.no} other, of ${score.check.total}`)
  const counts = {}
  for (const row of rows) counts[row.result] = (counts[row.result] || 0) + 1
  console.log('by result: ' + Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', '))

  const list = (title, kind) => {
    const bad = rows.filter(row => row.kind === kind && row.result !== 'pass')
    console.log(`\n${title} (${bad.length}):`)
    for (const row of bad) {
      console.log(`  ${row.id} [${row.result}] ${row.name}`)
      if (row.detail) console.log(`      ${row.detail}`)
    }
  }
  list('required, not passed', 'required')
  list('optimal, not passed', 'optimal')

  if (opts.json) {
    const out = { suite: 'http-cache-tests', version, score, tests: rows, raw: results }
    fs.writeFileSync(opts.json, JSON.stringify(out, null, 2) + '\n')
    console.log(`\nfull results: ${opts.json}`)
  }

  if (opts.baseline) {
    const base = readBaseline(opts.baseline)
    const below = []
    if (r.passed < base.required) below.push(`required ${r.passed} < ${base.required}`)
    if (o.passed < base.optimal) below.push(`optimal ${o.passed} < ${base.optimal}`)
    const above = []
    if (r.passed > base.required) above.push(`required ${r.passed} > ${base.required}`)
    if (o.passed > base.optimal) above.push(`optimal ${o.passed} > ${base.optimal}`)
    console.log(`\nbaseline: required=${base.required} optimal=${base.optimal}`)
    if (below.length) {
      console.log(`BELOW BASELINE: ${below.join(', ')}`)
      if (opts.check) process.exitCode = 1
    } else if (above.length) {
      console.log(`above baseline (${above.join(', ')}): raise ${opts.baseline}`)
    }
  }
}

if (mode === 'free-port') {
  freePort()
} else if (mode === 'wait-port' && (args.length === 2 || args.length === 3)) {
  waitPort(args[0], Number(args[1]), args[2])
} else if (mode === 'run' && args.length === 3) {
  run(...args).catch(err => die(err.stack || String(err)))
} else if (mode === 'report' && args.length >= 2) {
  const [pkg, resultsFile, ...rest] = args
  const opts = {}
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--json') opts.json = rest[++i]
    else if (rest[i] === '--baseline') opts.baseline = rest[++i]
    else if (rest[i] === '--check') opts.check = true
    else die(`unknown report option ${rest[i]}`)
  }
  report(pkg, resultsFile, opts).catch(err => die(err.stack || String(err)))
} else {
  die('usage: conformance.mjs free-port | wait-port PORT SECONDS [PID] | run PKG BASE TIMEOUT_MS | ' +
    'report PKG RESULTS [--json OUT] [--baseline FILE] [--check]')
}
