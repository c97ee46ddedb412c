import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  CONTENT_TYPE,
  escapeHelp,
  escapeLabelValue,
  formatValue,
  type HistogramChild,
  Registry,
} from "./exposition.ts";
import { families, HAVE_PROMTOOL, promtool, sample } from "./test_util.ts";

Deno.test("exposition: counters, gauges and histograms in Prometheus's text format, exactly", () => {
  const r = new Registry();
  let puts = 3;
  r.counter({ name: "demo_puts_total", help: "Puts.", collect: (emit) => emit(puts) });
  r.gauge({
    name: "demo_peer_up",
    help: "Peers up.",
    labelNames: ["peer", "zone"],
    collect(emit) {
      emit(1, ["a", "z1"]);
      emit(0, ["b", "z2"]);
    },
  });
  const latency = r.histogram({ name: "demo_seconds", help: "Latency.", buckets: [0.001, 0.01, 1] });
  latency.observe(0.0005);
  latency.observe(0.01); // on a bound: counts in that bucket
  latency.observe(2.5); // above every bound: +Inf only
  const byPeer = r.histogram({ name: "demo_rtt_seconds", help: "RTT.", labelNames: ["To"], buckets: [0.5] });
  byPeer.labels("b").observe(0.25);
  assertEquals(
    r.text(),
    [
      "# HELP demo_puts_total Puts.",
      "# TYPE demo_puts_total counter",
      "demo_puts_total 3",
      "# HELP demo_peer_up Peers up.",
      "# TYPE demo_peer_up gauge",
      'demo_peer_up{peer="a",zone="z1"} 1',
      'demo_peer_up{peer="b",zone="z2"} 0',
      "# HELP demo_seconds Latency.",
      "# TYPE demo_seconds histogram",
      'demo_seconds_bucket{le="0.001"} 1',
      'demo_seconds_bucket{le="0.01"} 2',
      'demo_seconds_bucket{le="1"} 2',
      'demo_seconds_bucket{le="+Inf"} 3',
      "demo_seconds_sum 2.5105",
      "demo_seconds_count 3",
      "# HELP demo_rtt_seconds RTT.",
      "# TYPE demo_rtt_seconds histogram",
      'demo_rtt_seconds_bucket{To="b",le="0.5"} 1',
      'demo_rtt_seconds_bucket{To="b",le="+Inf"} 1',
      'demo_rtt_seconds_sum{To="b"} 0.25',
      'demo_rtt_seconds_count{To="b"} 1',
      "",
    ].join("\n"),
  );
  // collected again at every scrape
  puts = 4;
  assertEquals(sample(r.text(), "demo_puts_total"), 4);
  assertEquals(r.contentType, "text/plain; version=0.0.4; charset=utf-8");
  assertEquals(CONTENT_TYPE, r.contentType);
});

Deno.test("exposition: numbers as Prometheus spells them", () => {
  const cases: [number, string][] = [
    [0, "0"],
    [1, "1"],
    [-1, "-1"],
    [1024, "1024"],
    [2 ** 53, "9007199254740992"],
    [0.001, "0.001"],
    [0.0001, "0.0001"],
    [8.192, "8.192"],
    [1e-7, "1e-7"],
    [1.5e21, "1.5e+21"],
    [Infinity, "+Inf"],
    [-Infinity, "-Inf"],
    [NaN, "NaN"],
  ];
  for (const [v, want] of cases) assertEquals(formatValue(v), want, String(v));
  // and Prometheus's parser (Go's ParseFloat) reads each back
  for (const [v, text] of cases) {
    if (Number.isFinite(v)) assertEquals(Number(text), v, text);
  }
});

Deno.test("exposition: help and label values are escaped", async () => {
  assertEquals(escapeHelp('a\\b\nc "d"'), 'a\\\\b\\nc "d"');
  assertEquals(escapeLabelValue('a\\b\nc "d"'), 'a\\\\b\\nc \\"d\\"');
  const r = new Registry();
  r.gauge({
    name: "demo_info",
    help: "Odd\\ help\nover two lines.",
    labelNames: ["v"],
    collect: (emit) => emit(1, ['say "hi"\\\n']),
  });
  const text = r.text();
  assertEquals(
    text,
    '# HELP demo_info Odd\\\\ help\\nover two lines.\n# TYPE demo_info gauge\ndemo_info{v="say \\"hi\\"\\\\\\n"} 1\n',
  );
  if (HAVE_PROMTOOL) {
    const { code, problems } = await promtool(text);
    assertEquals(code, 0, problems.join("\n"));
  }
});

Deno.test("exposition: a family without samples is left out; beforeCollect runs first", () => {
  const r = new Registry();
  const order: string[] = [];
  let peers: string[] = [];
  r.beforeCollect(() => order.push("before"));
  r.counter({
    name: "demo_sent_bytes_total",
    help: "Sent.",
    labelNames: ["To"],
    collect(emit) {
      order.push("collect");
      for (const p of peers) emit(10, [p]);
    },
  });
  r.histogram({ name: "demo_rtt_seconds", help: "RTT.", labelNames: ["To"], buckets: [1] });
  assertEquals(r.text(), "");
  assertEquals(order, ["before", "collect"]);
  peers = ["a"];
  assertEquals(
    r.text(),
    '# HELP demo_sent_bytes_total Sent.\n# TYPE demo_sent_bytes_total counter\ndemo_sent_bytes_total{To="a"} 10\n',
  );
});

Deno.test("exposition: a histogram child is made once per label set and listed from then on", () => {
  const r = new Registry();
  const h = r.histogram({ name: "demo_seconds", help: "D.", labelNames: ["m", "t"], buckets: [0.1, 1] });
  const a: HistogramChild = h.labels("Put", "unary");
  assert(h.labels("Put", "unary") === a, "the same child for the same labels");
  assert(h.labels("Put", "stream") !== a);
  // labels that would join alike stay apart
  assert(h.labels("a\u0000b", "c") !== h.labels("a", "b\u0000c"));
  const f = families(r.text());
  assertEquals(f.get("demo_seconds")?.labels, new Set(["m", "t"]));
  assertEquals(sample(r.text(), "demo_seconds_count", { m: "Put", t: "stream" }), 0, "zeros are listed");
  a.observe(0.05);
  a.observe(0.5);
  assertEquals([...a.counts], [1, 1, 0]);
  assertEquals(a.count, 2);
  assertEquals(a.sum, 0.55);
  const text = r.text();
  assertEquals(sample(text, "demo_seconds_bucket", { m: "Put", t: "unary", le: "0.1" }), 1);
  assertEquals(sample(text, "demo_seconds_bucket", { m: "Put", t: "unary", le: "1" }), 2);
  assertEquals(sample(text, "demo_seconds_bucket", { m: "Put", t: "unary", le: "+Inf" }), 2);
  assertEquals(sample(text, "demo_seconds_bucket", { m: "Put", t: "stream", le: "+Inf" }), 0);
});

Deno.test("exposition: names, labels and buckets are checked when a family is made", () => {
  const r = new Registry();
  r.counter({ name: "demo_total", help: "x", collect: () => {} });
  assertThrows(() => r.gauge({ name: "demo_total", help: "again", collect: () => {} }), TypeError);
  assertThrows(() => r.gauge({ name: "9demo", help: "x", collect: () => {} }), TypeError);
  assertThrows(() => r.gauge({ name: "d", help: "x", labelNames: ["a-b"], collect: () => {} }), TypeError);
  assertThrows(() => r.gauge({ name: "d", help: "x", labelNames: ["a", "a"], collect: () => {} }), TypeError);
  assertThrows(() => r.histogram({ name: "h1", help: "x", labelNames: ["le"], buckets: [1] }), TypeError);
  assertThrows(() => r.histogram({ name: "h2", help: "x", buckets: [1, 1] }), TypeError);
  assertThrows(() => r.histogram({ name: "h3", help: "x", buckets: [1, Infinity] }), TypeError);
  const h = r.histogram({ name: "h4", help: "x", labelNames: ["a"], buckets: [1] });
  assertThrows(() => h.labels(), TypeError);
  assertThrows(() => h.labels("x", "y"), TypeError);
  r.gauge({ name: "g", help: "x", labelNames: ["a"], collect: (emit) => emit(1) });
  assertThrows(() => r.text(), TypeError, "label values");
});
