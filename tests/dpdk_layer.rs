//! The safe DPDK layer in one process (the EAL can be initialised only once per process, so
//! this file holds a single test that walks through every piece in order).
#![forbid(unsafe_code)]

mod support;

use bypass::dpdk::{self, lcore, DpdkError, Eal, Mbuf, Mempool, Port, PortConfig};
use support::{need_root, Prefix};

#[test]
fn safe_layer_end_to_end() {
    if !need_root("safe_layer_end_to_end") {
        return;
    }
    let prefix = Prefix::new("layer");
    let mut args = vec!["bypass-test".to_string()];
    args.extend(prefix.eal(1, &["net_ring0"]));
    let eal = Eal::init(&args).expect("EAL init");

    // A second init is an error, not undefined behaviour.
    match Eal::init(&args) {
        Err(DpdkError::AlreadyInitialized) => {}
        Err(e) => panic!("second init: wrong error {e}"),
        Ok(_) => panic!("second init succeeded"),
    }
    assert!(eal.tsc_hz() > 0);
    assert_eq!(eal.worker_lcores(), vec![1]);

    // Mempool accounting and Mbuf data access.
    assert!(
        Mempool::new(&"x".repeat(64), 1023, 0, 2048, -1).is_err(),
        "name too long"
    );
    let pool = Mempool::new("layer_pool", 2047, 0, 2048, -1).expect("pool");
    assert_eq!(pool.capacity(), 2047);
    assert_eq!(pool.in_use(), 0);
    let mut m = pool.alloc().expect("mbuf");
    assert_eq!(pool.in_use(), 1);
    assert!(m.is_empty());
    m.append(5).unwrap().copy_from_slice(b"hello");
    assert_eq!(m.data(), b"hello");
    m.data_mut()[0] = b'j';
    assert!(m.trim(2));
    assert_eq!(m.data(), b"jel");
    assert!(!m.trim(4), "cannot trim more than the packet holds");
    assert_eq!(m.data(), b"jel");
    assert!(m.append(100_000).is_none());
    assert!(m.set_data(&[7u8; 60]));
    assert_eq!(m.len(), 60);
    drop(m);
    assert_eq!(pool.in_use(), 0, "drop returns the buffer");

    // The packet array: push_within/pop/free_all own and free exactly once.
    let mut b: Vec<Mbuf> = Vec::with_capacity(4);
    let cap = b.capacity();
    for _ in 0..cap {
        dpdk::push_within(&mut b, pool.alloc().unwrap())
            .ok()
            .unwrap();
    }
    let extra = pool.alloc().unwrap();
    let extra = dpdk::push_within(&mut b, extra).expect_err("full array gives the packet back");
    drop(extra);
    assert_eq!(pool.in_use() as usize, cap);
    drop(b.pop().unwrap());
    assert_eq!(pool.in_use() as usize, cap - 1);
    Mbuf::free_all(&mut b);
    assert_eq!(pool.in_use(), 0);
    assert_eq!(b.capacity(), cap, "free_all keeps the array");
    dpdk::push_within(&mut b, pool.alloc().unwrap())
        .ok()
        .unwrap();
    drop(b);
    assert_eq!(pool.in_use(), 0, "a dropped array frees what it holds");

    // Port on a ring loopback.
    assert!(dpdk::find_port("nope")
        .unwrap_err()
        .to_string()
        .contains("net_ring0"));
    let id = dpdk::find_port("net_ring0").unwrap();
    let cfg = PortConfig {
        rx_queues: 1,
        tx_queues: 1,
        rx_desc: 64,
        tx_desc: 64,
        ..PortConfig::default()
    };
    let too_many = PortConfig {
        rx_queues: 1000,
        ..cfg.clone()
    };
    assert!(Port::configure(id, &too_many, &pool).is_err());
    let mut port = Port::configure(id, &cfg, &pool).expect("configure");
    port.start().unwrap();
    assert_eq!(port.name(), "net_ring0");
    assert_eq!(port.driver(), "net_ring");
    let mut rxq = port.take_rx(0).unwrap();
    let mut txq = port.take_tx(0).unwrap();
    assert!(port.take_rx(0).is_none(), "a queue is handed out once");
    assert!(port.take_tx(1).is_none());

    // Fill the ring until tx refuses: what was not taken stays in the array, owned by us.
    let mut sent_total = 0usize;
    let mut refused = 0usize;
    for _ in 0..64 {
        let mut burst = Vec::with_capacity(32);
        for i in 0..32u8 {
            let mut m = pool.alloc().expect("pool has room");
            assert!(m.set_data(&[i; 64]));
            dpdk::push_within(&mut burst, m).ok().unwrap();
        }
        let sent = txq.tx(&mut burst);
        sent_total += sent;
        assert_eq!(burst.len(), 32 - sent, "unsent packets remain in the burst");
        if sent < 32 {
            refused = burst.len();
            // The first unsent packet is the one right after the last sent.
            assert_eq!(burst.as_slice()[0].data()[0], sent as u8);
            assert_eq!(pool.in_use() as usize, sent_total + refused);
            break;
        }
    }
    assert!(refused > 0, "the ring never filled");
    assert_eq!(
        pool.in_use() as usize,
        sent_total,
        "refused packets freed exactly once"
    );

    // Everything sent comes back in order on the loopback.
    let mut got = 0usize;
    let mut rxb = Vec::with_capacity(32);
    let rx_cap = rxb.capacity();
    loop {
        let n = rxq.rx(&mut rxb);
        assert_eq!(rxb.capacity(), rx_cap, "rx never grows the array");
        if n == 0 {
            break;
        }
        for (k, m) in rxb.as_slice().iter().enumerate() {
            assert_eq!(m.data()[0] as usize, (got + k) % 32);
            assert_eq!(m.len(), 64);
        }
        got += n;
        Mbuf::free_all(&mut rxb);
    }
    assert_eq!(got, sent_total);
    assert_eq!(pool.in_use(), 0);
    let stats = port.stats().unwrap();
    assert_eq!(stats.opackets as usize, sent_total);
    assert_eq!(stats.ipackets as usize, sent_total);
    assert!(port
        .xstats()
        .unwrap()
        .iter()
        .any(|(n, _)| n == "rx_good_packets"));

    // Worker launch on lcore 1: result returned, panic caught and reported.
    let j = lcore::launch(1, lcore::current_lcore).unwrap();
    assert_eq!(j.join().unwrap(), Some(1));
    // The panic is expected; keep its message out of the test output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let j = lcore::launch(1, || -> u32 { panic!("boom") }).unwrap();
    let joined = j.join();
    std::panic::set_hook(hook);
    assert!(joined.is_err(), "a panic on an lcore is returned, not lost");
    let pool_ref = std::sync::Arc::new(pool);
    let p2 = std::sync::Arc::clone(&pool_ref);
    let j = lcore::launch(1, move || {
        let bufs: Vec<_> = (0..100).map(|_| p2.alloc().unwrap()).collect();
        bufs.len()
    })
    .unwrap();
    assert_eq!(j.join().unwrap(), 100);
    assert_eq!(
        pool_ref.in_use(),
        0,
        "buffers freed on a worker lcore go back"
    );

    // A thread the program makes can register as an lcore and use the pool.
    let p3 = std::sync::Arc::clone(&pool_ref);
    std::thread::spawn(move || {
        let id = lcore::register_thread().expect("register");
        assert_eq!(lcore::current_lcore(), Some(id));
        drop(p3.alloc().unwrap());
        lcore::unregister_thread();
    })
    .join()
    .unwrap();
    assert_eq!(pool_ref.in_use(), 0);

    port.return_rx(rxq);
    port.return_tx(txq);
    drop(port);
    drop(pool_ref);
    drop(eal);
}
