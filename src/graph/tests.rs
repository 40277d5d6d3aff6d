//! Whole-graph tests through the public API, on `VecBuf`.

use std::cell::Cell;
use std::rc::Rc;

use super::*;

/// even first byte -> stage2, 0xFF -> tx directly, odd -> drop("odd"),
/// empty -> drop("empty").
struct Classify;

impl<P: PacketBuf> Node<P> for Classify {
    fn name(&self) -> &'static str {
        "classify"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["stage2", DROP, TX]
    }
    fn drop_reasons(&self) -> &'static [&'static str] {
        &["odd", "empty"]
    }
    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        let (mut odd, mut empty) = (0, 0);
        for k in 0..pkts.len() {
            if let Some(ahead) = pkts.get(k + 4) {
                prefetch(ahead);
            }
            nexts[k] = match pkts[k].data().first() {
                None => {
                    empty += 1;
                    1
                }
                Some(0xFF) => 2,
                Some(b) if b % 2 == 0 => 0,
                Some(_) => {
                    odd += 1;
                    1
                }
            };
        }
        // Counted once per vector, not per packet.
        ctx.drop_n(0, odd);
        ctx.drop_n(1, empty);
    }
}

/// Marks packets as processed by incrementing the first byte.
struct Stage2;

impl<P: PacketBuf> Node<P> for Stage2 {
    fn name(&self) -> &'static str {
        "stage2"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &[TX]
    }
    fn process(&mut self, _: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        for p in pkts.iter_mut() {
            p.data_mut()[0] += 1;
        }
        nexts.fill(0);
    }
}

/// Ad-hoc node for edge cases.
struct FnNode<F> {
    name: &'static str,
    nexts: &'static [&'static str],
    f: F,
}

impl<P: PacketBuf, F: FnMut(&mut NodeCtx<'_>, &mut [P], &mut [u16])> Node<P> for FnNode<F> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        self.nexts
    }
    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        (self.f)(ctx, pkts, nexts)
    }
}

fn fn_node<P: PacketBuf, F>(
    name: &'static str,
    nexts: &'static [&'static str],
    f: F,
) -> Box<dyn Node<P>>
where
    F: FnMut(&mut NodeCtx<'_>, &mut [P], &mut [u16]) + 'static,
{
    Box::new(FnNode { name, nexts, f })
}

fn graph<P: PacketBuf + 'static>() -> Graph<P> {
    // Consumer listed first: construction must still order it after.
    Graph::new(
        vec![Box::new(Stage2), Box::new(Classify)],
        "classify",
        1_000,
    )
    .unwrap()
}

fn pkt(class: u8, seq: u16) -> VecBuf {
    let s = seq.to_be_bytes();
    VecBuf::from_slice(&[class, s[0], s[1]])
}

fn seq<P: PacketBuf>(p: &P) -> u16 {
    u16::from_be_bytes([p.data()[1], p.data()[2]])
}

fn vector(pkts: impl IntoIterator<Item = VecBuf>) -> PacketVector<VecBuf> {
    let mut v = PacketVector::new();
    for p in pkts {
        v.push(p).unwrap();
    }
    v
}

fn counts(s: &GraphStats, node: &str) -> (u64, u64, u64) {
    let n = s.node(node).unwrap();
    (n.calls, n.vectors, n.packets)
}

#[test]
fn mixed_vector_is_scattered_and_fully_accounted() {
    let mut g = graph();
    assert_eq!(g.node_names().collect::<Vec<_>>(), ["classify", "stage2"]);
    assert_eq!(g.entry_name(), "classify");
    let mut input = vector((0..100).map(|i| pkt(i as u8 * 2 % 8 + (i % 2) as u8, i)));
    let in_storage = input.as_slice().as_ptr();
    let mut out = PacketVector::new();
    g.dispatch(&mut input, 42, &mut out);

    assert!(input.is_empty());
    assert_eq!(out.len(), 50);
    // Order within the edge preserved, every packet went through stage2.
    let seqs: Vec<u16> = out.iter().map(seq).collect();
    assert_eq!(seqs, (0..100).step_by(2).collect::<Vec<_>>());
    assert!(out.iter().all(|p| p.data()[0] % 2 == 1));
    // classify scattered; stage2 then home-ran its own vector into out.
    assert_ne!(out.as_slice().as_ptr(), in_storage);

    let s = g.stats();
    assert_eq!(counts(&s, "classify"), (1, 1, 100));
    assert_eq!(counts(&s, "stage2"), (1, 1, 50));
    assert_eq!(counts(&s, DROP), (1, 1, 50));
    assert_eq!(counts(&s, TX), (1, 1, 50));
    assert_eq!(s.drops("classify", "odd"), 50);
    assert_eq!(s.drops("classify", "empty"), 0);
    assert_eq!(s.total_drops(), 50);
    assert_eq!(out.len() as u64 + s.total_drops(), 100);
    assert_eq!(s.node("stage2").unwrap().avg_vector_size(), 50.0);
    #[cfg(target_arch = "x86_64")]
    assert!(s.node("classify").unwrap().cycles > 0);
}

#[test]
fn uniform_vector_takes_the_home_run() {
    let mut g = graph();
    let mut input = vector((0..VECTOR_SIZE as u16).map(|i| pkt(4, i)));
    let in_storage = input.as_slice().as_ptr();
    let mut out = PacketVector::new();
    g.dispatch(&mut input, 0, &mut out);

    // The input's storage travelled classify -> stage2 -> tx untouched.
    assert_eq!(out.as_slice().as_ptr(), in_storage);
    assert_eq!(out.len(), VECTOR_SIZE);
    assert!(out
        .iter()
        .enumerate()
        .all(|(i, p)| seq(p) == i as u16 && p.data()[0] == 5));
    // The caller's input vector is empty but reusable at full size.
    assert!(input.is_empty());
    for i in 0..VECTOR_SIZE as u16 {
        input.push(pkt(0xFF, i)).unwrap();
    }
    let mut out2 = PacketVector::new();
    g.dispatch(&mut input, 0, &mut out2);
    assert_eq!(out2.len(), VECTOR_SIZE);
    assert!(out2.iter().all(|p| p.data()[0] == 0xFF), "bypassed stage2");

    let s = g.stats();
    assert_eq!(counts(&s, "classify"), (2, 2, 512));
    assert_eq!(counts(&s, "stage2"), (1, 1, 256));
    assert_eq!(counts(&s, TX), (2, 2, 512));
    assert_eq!(s.total_drops(), 0);
}

#[test]
fn scatter_over_three_edges_keeps_per_edge_order() {
    let mut g = graph();
    let classes = [0xFF, 2, 3, 0xFF, 4, 5, 6, 0xFF, 1, 8];
    let mut input = vector(classes.iter().enumerate().map(|(i, &c)| pkt(c, i as u16)));
    input.push(VecBuf::with_capacity(8)).unwrap();
    let mut out = PacketVector::new();
    let out_storage = out.as_slice().as_ptr();
    g.dispatch(&mut input, 0, &mut out);
    assert_eq!(
        out.as_slice().as_ptr(),
        out_storage,
        "scatter pushed into out"
    );

    // classify runs first, so its direct-tx packets precede stage2's.
    let got: Vec<(u8, u16)> = out.iter().map(|p| (p.data()[0], seq(p))).collect();
    assert_eq!(
        got,
        [
            (0xFF, 0),
            (0xFF, 3),
            (0xFF, 7),
            (3, 1),
            (5, 4),
            (7, 6),
            (9, 9)
        ]
    );
    let s = g.stats();
    assert_eq!(s.drops("classify", "odd"), 3);
    assert_eq!(s.drops("classify", "empty"), 1);
    assert_eq!(out.len() as u64 + s.total_drops(), 11);
}

#[test]
fn full_pending_vector_is_flushed_before_more_arrive() {
    let mut g = graph();
    let stage2 = g.node_id("stage2").unwrap();
    let mut out = PacketVector::new();
    for i in 0..200 {
        g.enqueue(stage2, pkt(10, 1000 + i), &mut out);
    }
    assert!(out.is_empty(), "200 fit; nothing runs before dispatch");

    // 256 more for stage2 cannot join the 200 pending: stage2 runs on its
    // 200 first, then on the 256. Only 256 fit in out; 200 are tx-full.
    let mut input = vector((0..VECTOR_SIZE as u16).map(|i| pkt(2, i)));
    g.dispatch(&mut input, 0, &mut out);

    assert_eq!(out.len(), VECTOR_SIZE);
    let seqs: Vec<u16> = out.iter().map(seq).collect();
    let expected: Vec<u16> = (1000..1200).chain(0..56).collect();
    assert_eq!(seqs, expected, "older packets leave first");
    let s = g.stats();
    assert_eq!(counts(&s, "stage2"), (1, 2, 456));
    assert_eq!(s.node("stage2").unwrap().avg_vector_size(), 228.0);
    assert_eq!(counts(&s, TX), (1, 2, 456));
    assert_eq!(s.drops(TX, TX_FULL), 200);
    assert_eq!(out.len() as u64 + s.total_drops(), 456);
}

#[test]
fn enqueue_into_full_vector_runs_the_node() {
    let mut g = graph();
    let stage2 = g.node_id("stage2").unwrap();
    let mut out = PacketVector::new();
    for i in 0..300 {
        g.enqueue(stage2, pkt(6, i), &mut out);
    }
    assert_eq!(
        out.len(),
        VECTOR_SIZE,
        "257th enqueue flushed the first 256"
    );
    let mut out2 = PacketVector::new();
    g.dispatch(&mut PacketVector::new(), 0, &mut out2);
    assert_eq!(
        out2.iter().map(seq).collect::<Vec<_>>(),
        (256..300).collect::<Vec<_>>()
    );
    assert_eq!(counts(&g.stats(), "stage2"), (1, 2, 300));
}

#[test]
fn full_tx_drops_and_counts_on_both_paths() {
    let mut g = graph();
    let mut out = vector((0..250).map(|i| pkt(0, i)));
    // Scatter path: 10 even of 20, 6 fit.
    let mut input = vector((0..20).map(|i| pkt((i % 2) as u8, 500 + i)));
    g.dispatch(&mut input, 0, &mut out);
    assert_eq!(out.len(), VECTOR_SIZE);
    assert_eq!(seq(&out.as_slice()[250]), 500);
    assert_eq!(seq(&out.as_slice()[255]), 510);
    let s = g.stats();
    assert_eq!(s.drops(TX, TX_FULL), 4);
    assert_eq!(s.drops("classify", "odd"), 10);

    // Home-run path into a full out: everything is tx-full.
    let mut input = vector((0..30).map(|i| pkt(0xFF, i)));
    g.dispatch(&mut input, 0, &mut out);
    let s = g.stats();
    assert_eq!(s.drops(TX, TX_FULL), 34);
    assert_eq!(counts(&s, TX), (2, 2, 40));
    // 50 in, 6 out.
    assert_eq!(6 + s.total_drops(), 50);
}

#[derive(Debug)]
struct Counted {
    buf: VecBuf,
    freed: Rc<Cell<usize>>,
}

impl PacketBuf for Counted {
    fn data(&self) -> &[u8] {
        self.buf.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.buf.data_mut()
    }
    fn trim(&mut self, n: usize) -> bool {
        self.buf.trim(n)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.freed.set(self.freed.get() + 1);
    }
}

#[test]
fn dropped_packets_are_freed_and_others_are_not() {
    let freed = Rc::new(Cell::new(0));
    let counted = |class: u8, i: u16| Counted {
        buf: pkt(class, i),
        freed: Rc::clone(&freed),
    };
    let mut g: Graph<Counted> = graph();
    let mut input = PacketVector::new();
    for i in 0..40 {
        input.push(counted((i % 4) as u8, i)).unwrap();
    }
    let mut out = PacketVector::new();
    for i in 0..250 {
        out.push(counted(0, i)).unwrap();
    }
    g.dispatch(&mut input, 0, &mut out);
    // 20 odd dropped by classify, 20 even reach tx where only 6 fit.
    assert_eq!(freed.get(), 34);
    assert_eq!(g.stats().total_drops(), 34);

    // Home-run drop path frees the whole vector too.
    for i in 0..10 {
        input.push(counted(1, i)).unwrap();
    }
    g.dispatch(&mut input, 0, &mut PacketVector::new());
    assert_eq!(freed.get(), 44);
    drop(out);
    assert_eq!(freed.get(), 300);
}

#[test]
fn sloppy_nodes_are_caught_by_the_drop_sink() {
    // Drops without ctx.drop, and an out-of-range next index.
    let sloppy = fn_node("sloppy", &[DROP, TX], |_, pkts: &mut [VecBuf], nexts| {
        for (p, n) in pkts.iter().zip(nexts.iter_mut()) {
            *n = p.data()[0] as u16;
        }
    });
    let mut g = Graph::new(vec![sloppy], "sloppy", 1).unwrap();
    let mut input = vector((0..9).map(|i| pkt((i % 3) as u8, i)));
    let mut out = PacketVector::new();
    g.dispatch(&mut input, 0, &mut out);
    let s = g.stats();
    assert_eq!(out.len(), 3);
    assert_eq!(s.drops(DROP, "unattributed"), 3);
    assert_eq!(s.drops(DROP, "bad-next"), 3);
    assert_eq!(counts(&s, DROP), (1, 1, 6));
    assert_eq!(out.len() as u64 + s.total_drops(), 9);

    let mut input = vector((0..4).map(|i| pkt(9, i)));
    g.dispatch(&mut input, 0, &mut out);
    assert_eq!(g.stats().drops(DROP, "bad-next"), 7);
}

#[test]
fn nodes_see_burst_timing() {
    let seen = Rc::new(Cell::new((0, 0)));
    let probe = Rc::clone(&seen);
    let node = fn_node("time", &[TX], move |ctx, _: &mut [VecBuf], nexts| {
        assert!(ctx.now_tsc() >= ctx.rx_tsc() || cfg!(not(target_arch = "x86_64")));
        probe.set((ctx.rx_tsc(), ctx.tsc_hz()));
        nexts.fill(0);
    });
    let mut g = Graph::new(vec![node], "time", 2_500_000_000).unwrap();
    let rx = now_tsc();
    g.dispatch(&mut vector([pkt(0, 0)]), rx, &mut PacketVector::new());
    assert_eq!(seen.get(), (rx, 2_500_000_000));
}

#[test]
fn diamond_runs_each_node_once_per_dispatch() {
    // a -> {b, c} -> d -> tx: d must run once, after both b and c.
    let a = fn_node("a", &["b", "c"], |_, pkts: &mut [VecBuf], nexts| {
        for (p, n) in pkts.iter().zip(nexts.iter_mut()) {
            *n = (p.data()[0] % 2) as u16;
        }
    });
    let pass = |name, next: &'static [&'static str]| {
        fn_node(name, next, |_, _: &mut [VecBuf], nexts: &mut [u16]| {
            nexts.fill(0)
        })
    };
    let nodes = vec![pass("d", &[TX]), pass("c", &["d"]), a, pass("b", &["d"])];
    let mut g = Graph::new(nodes, "a", 1).unwrap();
    let names: Vec<_> = g.node_names().collect();
    let at = |n| names.iter().position(|&x| x == n).unwrap();
    assert!(at("a") < at("b") && at("a") < at("c") && at("b") < at("d") && at("c") < at("d"));

    let mut out = PacketVector::new();
    g.dispatch(&mut vector((0..50).map(|i| pkt(i as u8, i))), 0, &mut out);
    assert_eq!(out.len(), 50);
    assert_eq!(counts(&g.stats(), "d"), (1, 1, 50));
}

#[test]
fn build_errors_name_the_culprits() {
    type B = Box<dyn Node<VecBuf>>;
    let pass = |name, next: &'static [&'static str]| -> B {
        fn_node(name, next, |_, _: &mut [VecBuf], nexts: &mut [u16]| {
            nexts.fill(0)
        })
    };
    let err = |nodes: Vec<B>, entry| Graph::new(nodes, entry, 1).err().unwrap();

    let e = err(vec![pass("a", &["b", "nowhere"]), pass("b", &[TX])], "a");
    assert_eq!(
        e,
        BuildError::UnknownNext {
            node: "a",
            next: "nowhere"
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("\"a\"") && msg.contains("\"nowhere\""),
        "{msg}"
    );

    let e = err(
        vec![
            pass("a", &["b"]),
            pass("b", &["c", DROP]),
            pass("c", &["b"]),
        ],
        "a",
    );
    assert_eq!(e, BuildError::Cycle(vec!["b", "c", "b"]));
    assert!(e.to_string().contains("b -> c -> b"));
    let e = err(vec![pass("a", &["a"])], "a");
    assert_eq!(e, BuildError::Cycle(vec!["a", "a"]));

    let e = err(vec![pass("a", &[TX]), pass("a", &[DROP])], "a");
    assert_eq!(e, BuildError::DuplicateName("a"));
    assert_eq!(
        err(vec![pass(DROP, &[])], "drop"),
        BuildError::ReservedName("drop")
    );
    assert_eq!(
        err(vec![pass("tx", &[])], "tx"),
        BuildError::ReservedName("tx")
    );
    assert_eq!(
        err(vec![pass("a", &[TX])], "b"),
        BuildError::UnknownEntry("b".into())
    );
}

#[test]
fn worker_snapshots_merge_and_delta() {
    let mut w0 = graph();
    let mut w1 = graph();
    let reader = w0.counters();
    let mut out = PacketVector::new();
    w0.dispatch(&mut vector((0..10).map(|i| pkt(i as u8, i))), 0, &mut out);
    let before = std::thread::spawn(move || reader.snapshot())
        .join()
        .unwrap();
    out.clear();
    w0.dispatch(&mut vector((0..30).map(|i| pkt(i as u8, i))), 0, &mut out);
    w1.dispatch(&mut vector((0..6).map(|i| pkt(1, i))), 0, &mut out);

    let per_sec = w0.stats().delta(&before);
    assert_eq!(counts(&per_sec, "classify"), (1, 1, 30));
    assert_eq!(per_sec.drops("classify", "odd"), 15);

    let total = GraphStats::sum([&w0.stats(), &w1.stats()]);
    assert_eq!(counts(&total, "classify"), (3, 3, 46));
    assert_eq!(total.drops("classify", "odd"), 5 + 15 + 6);
    assert_eq!(counts(&total, TX), (2, 2, 20));
    assert_eq!(
        total.node("classify").unwrap().avg_vector_size(),
        46.0 / 3.0
    );
}

/// `cargo test --release -- --ignored --nocapture bench`
#[test]
#[ignore]
fn bench_dispatch() {
    let mut g = graph();
    let mut input = vector((0..VECTOR_SIZE as u16).map(|i| pkt(0, i)));
    let mut out = PacketVector::new();
    let rounds = 1_000_000u32;
    let t = std::time::Instant::now();
    for r in 0..rounds {
        g.dispatch(&mut input, 0, &mut out);
        // Recycle buffers so the engine, not the allocator, is measured.
        // Odd rounds mix in direct-tx packets to force the scatter path.
        for (i, mut p) in out.drain().enumerate() {
            p.data_mut()[0] = if r % 2 == 1 && i % 64 == 0 { 0xFF } else { 0 };
            input.push(p).unwrap();
        }
    }
    let pkts = f64::from(rounds) * VECTOR_SIZE as f64;
    let s = g.stats();
    assert_eq!(s.total_drops(), 0);
    println!(
        "{:.2} ns/pkt; classify {:.1} cyc/pkt, stage2 {:.1} cyc/pkt",
        t.elapsed().as_nanos() as f64 / pkts,
        s.node("classify").unwrap().cycles_per_packet(),
        s.node("stage2").unwrap().cycles_per_packet(),
    );
}

/// Sends everything to "sink", promising property bit 0 on that edge only
/// for packets whose first byte is even (odd ones go there without it,
/// through a second edge to the same node).
struct Promiser;

impl<P: PacketBuf> Node<P> for Promiser {
    fn name(&self) -> &'static str {
        "promiser"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &["sink", "sink"]
    }
    fn edge_props(&self) -> &'static [u32] {
        &[1]
    }
    fn process(&mut self, _: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        for (p, n) in pkts.iter().zip(nexts.iter_mut()) {
            *n = u16::from(p.data()[0] % 2 == 1);
        }
    }
}

/// Records, per call, whether property bit 0 held for its whole vector.
struct PropSink(Rc<std::cell::RefCell<Vec<bool>>>);

impl<P: PacketBuf> Node<P> for PropSink {
    fn name(&self) -> &'static str {
        "sink"
    }
    fn next_nodes(&self) -> &'static [&'static str] {
        &[TX]
    }
    fn process(&mut self, ctx: &mut NodeCtx<'_>, _: &mut [P], nexts: &mut [u16]) {
        self.0.borrow_mut().push(ctx.guaranteed(1));
        nexts.fill(0);
    }
}

#[test]
fn edge_properties_hold_only_when_every_packet_carries_them() {
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut g: Graph<VecBuf> = Graph::new(
        vec![Box::new(Promiser), Box::new(PropSink(Rc::clone(&seen)))],
        "promiser",
        1_000,
    )
    .unwrap();
    let sink = g.node_id("sink").unwrap();
    let mut out = PacketVector::new();

    // All through the promising edge (home run): the property holds.
    g.dispatch(&mut vector((0..8).map(|i| pkt(0, i))), 0, &mut out);
    // One packet through the other edge (scatter): it does not.
    g.dispatch(
        &mut vector((0..8).map(|i| pkt((i == 3) as u8, i))),
        0,
        &mut out,
    );
    // Queued from outside the graph, alone and mixed with promised ones.
    out.clear();
    g.enqueue(sink, pkt(0, 0), &mut out);
    g.dispatch(&mut PacketVector::new(), 0, &mut out);
    g.enqueue(sink, pkt(0, 0), &mut out);
    g.dispatch(&mut vector((0..8).map(|i| pkt(0, i))), 0, &mut out);
    // And once more all promised: an emptied vector starts afresh.
    g.dispatch(&mut vector((0..8).map(|i| pkt(2, i))), 0, &mut out);
    assert_eq!(*seen.borrow(), [true, false, false, false, true]);

    // A context built outside the engine guarantees nothing.
    let mut drops = [];
    assert!(!NodeCtx::new(&mut drops, 0, 1).guaranteed(1));
}

/// Node `i` of a chain: adds 1 to the first byte and passes the packet on.
fn chain_node(i: usize, last: usize) -> Box<dyn Node<VecBuf>> {
    let name: &'static str = Box::leak(format!("n{i}").into_boxed_str());
    let next: &'static str = if i == last {
        TX
    } else {
        Box::leak(format!("n{}", i + 1).into_boxed_str())
    };
    let nexts: &'static [&'static str] = Box::leak(vec![next].into_boxed_slice());
    fn_node(name, nexts, |_, pkts: &mut [VecBuf], nexts| {
        for p in pkts.iter_mut() {
            p.data_mut()[0] += 1;
        }
        nexts.fill(0);
    })
}

#[test]
fn a_chain_longer_than_one_pending_word_runs_every_node_once() {
    // 70 slots: the pending bitmap needs two words, and the packets cross
    // from the first word into the second.
    let nodes = (0..70).rev().map(|i| chain_node(i, 69)).collect();
    let mut g = Graph::new(nodes, "n0", 1).unwrap();
    let mut out = PacketVector::new();
    g.dispatch(&mut vector((0..3).map(|i| pkt(0, i))), 0, &mut out);
    assert_eq!(out.iter().map(|p| p.data()[0]).collect::<Vec<_>>(), [70; 3]);
    assert_eq!(out.iter().map(seq).collect::<Vec<_>>(), [0, 1, 2]);
    out.clear();

    // A packet queued from outside, deep in the second word, waits for the
    // next dispatch and runs the rest of the chain in the same pass.
    let n65 = g.node_id("n65").unwrap();
    g.enqueue(n65, pkt(0, 9), &mut out);
    assert!(out.is_empty());
    g.dispatch(&mut vector([pkt(0, 7)]), 0, &mut out);
    let got: Vec<_> = out.iter().map(|p| (seq(p), p.data()[0])).collect();
    assert_eq!(got, [(9, 5), (7, 70)]);
    let s = g.stats();
    assert_eq!(counts(&s, "n0"), (2, 2, 4));
    assert_eq!(counts(&s, "n64"), (2, 2, 4));
    assert_eq!(counts(&s, "n65"), (2, 2, 5));
    assert_eq!(counts(&s, "n69"), (2, 2, 5));
    assert_eq!(counts(&s, TX), (2, 2, 5));
}

#[test]
fn drop_counts_start_from_zero_in_every_call() {
    let mut g = graph();
    let mut out = PacketVector::new();
    let (odd, even, empty) = (|i| pkt(1, i), |i| pkt(2, i), VecBuf::with_capacity(8));
    g.dispatch(&mut vector([odd(0), odd(1), even(2)]), 0, &mut out);
    g.dispatch(&mut vector([even(3), pkt(0xFF, 4)]), 0, &mut out);
    g.dispatch(&mut vector([empty, odd(5)]), 0, &mut out);
    let s = g.stats();
    assert_eq!(s.drops("classify", "odd"), 3);
    assert_eq!(s.drops("classify", "empty"), 1);
    assert_eq!(s.drops(DROP, "unattributed"), 0);
    assert_eq!(counts(&s, DROP), (2, 2, 4));
    assert_eq!(out.len(), 3);
}

#[test]
fn timing_one_dispatch_in_n_keeps_every_count_exact() {
    let mut g = graph();
    g.time_one_in(4);
    let mut out = PacketVector::new();
    for i in 0..9 {
        // One odd packet dropped, one even packet through stage2 each time.
        g.dispatch(&mut vector([pkt(1, i), pkt(2, i)]), 0, &mut out);
    }
    let s = g.stats();
    assert_eq!(counts(&s, "classify"), (9, 9, 18));
    assert_eq!(counts(&s, "stage2"), (9, 9, 9));
    assert_eq!(s.drops("classify", "odd"), 9);
    assert_eq!(out.len(), 9);
    // Dispatches 0, 4 and 8 were timed.
    assert_eq!(s.node("classify").unwrap().timed_packets, 6);
    assert_eq!(s.node("stage2").unwrap().timed_packets, 3);
    assert!(s.node("classify").unwrap().cycles > 0 || cfg!(not(target_arch = "x86_64")));
    assert_eq!(
        s.node(TX).unwrap().timed_packets,
        0,
        "sinks are never timed"
    );

    // Back to every dispatch.
    g.time_one_in(0);
    g.dispatch(&mut vector([pkt(2, 9)]), 0, &mut out);
    assert_eq!(g.stats().node("stage2").unwrap().timed_packets, 4);
}
