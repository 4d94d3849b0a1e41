//! Request dissemination windows: a replica that missed a sender's broadcasts for good is not
//! deaf to that sender forever (its window slides once `t+1` parties show they are past it), and
//! `t` parties alone cannot make it slide; a replica slow to deliver keeps messages that arrive
//! ahead of its window, so its echo is not lost when the others need it. Requests submitted
//! while a replica's own broadcasts are in flight leave together in one broadcast.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replication::atomic::dissemination::{Disseminated, Dissemination, DisseminationStep, IN_FLIGHT, WINDOW};
use replication::broadcast::reliable::RbcMessage;
use replication::crypto::standin::StandinCluster;
use replication::{InstanceId, PartyId, Target};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

type Wire = (PartyId, PartyId, (PartyId, u64, RbcMessage));

struct Net {
    nodes: Vec<Dissemination>,
    queue: VecDeque<Wire>,
    /// Replicas whose messages, in and out, are lost.
    cut: BTreeSet<PartyId>,
    /// Replicas whose peers' messages to them are lost (their own still go out).
    deaf: BTreeSet<PartyId>,
    /// Messages held back (delivered only by [`Net::release_late`]): those `late` selects.
    late: fn(&Wire) -> bool,
    held_back: Vec<Wire>,
    delivered: Vec<Vec<Disseminated>>,
    faults: usize,
    rng: ChaCha8Rng,
}

impl Net {
    fn new(n: usize, t: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let cluster = StandinCluster::deal(n, t, &mut rng);
        let nodes =
            (0..n).map(|p| Dissemination::new(Arc::new(cluster.network_info(p)), InstanceId::root(7))).collect();
        Net {
            nodes,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            deaf: BTreeSet::new(),
            late: |_| false,
            held_back: Vec::new(),
            delivered: vec![Vec::new(); n],
            faults: 0,
            rng,
        }
    }

    fn dispatch(&mut self, from: PartyId, step: DisseminationStep) {
        self.delivered[from].extend(step.output);
        self.faults += step.faults.len();
        for tm in step.messages {
            let targets: Vec<PartyId> = match tm.target {
                Target::All => (0..self.nodes.len()).collect(),
                Target::Node(p) => vec![p],
            };
            for to in targets {
                let lost = self.deaf.contains(&to) && to != from;
                if !self.cut.contains(&from) && !self.cut.contains(&to) && !lost {
                    let wire = (from, to, tm.message.clone());
                    if (self.late)(&wire) {
                        self.held_back.push(wire);
                    } else {
                        self.queue.push_back(wire);
                    }
                }
            }
        }
    }

    fn submit(&mut self, node: PartyId, request: Vec<u8>) {
        let step = self.nodes[node].submit(request, &mut self.rng);
        self.dispatch(node, step);
    }

    fn deliver(&mut self, from: PartyId, to: PartyId, (sender, seq, message): (PartyId, u64, RbcMessage)) {
        let step = self.nodes[to].handle_message(from, sender, seq, message, &mut self.rng);
        self.dispatch(to, step);
    }

    fn run(&mut self) {
        while let Some((from, to, message)) = self.queue.pop_front() {
            if !self.cut.contains(&to) {
                self.deliver(from, to, message);
            }
        }
    }

    /// Delivers the messages held back so far (and what they cause), in the order sent.
    fn release_late(&mut self) {
        self.late = |_| false;
        self.queue.extend(std::mem::take(&mut self.held_back));
        self.run();
    }

    fn has(&self, node: PartyId, request: &[u8]) -> bool {
        self.delivered[node].iter().any(|d| d.request == request)
    }
}

#[test]
fn a_replica_that_missed_more_than_a_window_of_broadcasts_delivers_the_senders_later_ones() {
    let mut net = Net::new(4, 1);
    net.cut.insert(3);
    let missed = 2 * WINDOW;
    for i in 0..missed {
        net.submit(0, format!("missed {i}").into_bytes());
        net.run();
    }
    assert!(net.has(1, format!("missed {}", missed - 1).as_bytes()));
    assert_eq!(net.nodes[3].low(0), Some(0));
    net.cut.remove(&3);
    for i in 0..10 {
        net.submit(0, format!("later {i}").into_bytes());
    }
    net.run();
    for i in 0..10 {
        assert!(net.has(3, format!("later {i}").as_bytes()), "replica 3 delivered later request {i}");
    }
    // The window moved as far as the others' messages prove safe: an honest party sending for
    // instance `x` delivered every instance up to `x - WINDOW`.
    assert!(net.nodes[3].low(0) >= Some(missed + 1 - WINDOW), "{:?}", net.nodes[3].low(0));
    assert_eq!(net.faults, 0, "sliding blames no one");
}

#[test]
fn t_parties_claiming_to_be_far_ahead_do_not_move_the_window() {
    let mut net = Net::new(4, 1);
    let far = 10 * WINDOW;
    // Party 1 (faulty, say) sends for far instances of sender 0, repeatedly.
    for seq in far..far + 20 {
        net.deliver(1, 3, (0, seq, RbcMessage::Echo(b"forged".to_vec())));
        net.deliver(1, 3, (0, seq, RbcMessage::Ready([7; 32])));
    }
    assert_eq!(net.nodes[3].low(0), Some(0));
    // A message inside the window is still handled: sender 0's request reaches replica 3.
    net.submit(0, b"in window".to_vec());
    net.run();
    assert!(net.has(3, b"in window"));
    // A second party past the window is `t+1`: the window slides, to no further than the lower
    // of the two claims allows.
    net.deliver(2, 3, (0, WINDOW + 5, RbcMessage::Ready([7; 32])));
    assert_eq!(net.nodes[3].low(0), Some(6));
}

#[test]
fn own_broadcasts_delivered_without_their_sender_free_its_window_once_ordered() {
    // Replica 0's peers dropped what they had for it (it was down too long): its own broadcasts
    // reach the others, who deliver them, but it never hears their echoes and readys.
    let mut net = Net::new(4, 1);
    net.deaf.insert(0);
    let requests: Vec<Vec<u8>> = (0..IN_FLIGHT).map(|i| format!("own {i}").into_bytes()).collect();
    for request in &requests {
        net.submit(0, request.clone());
    }
    net.run();
    assert!(requests.iter().all(|r| net.has(1, r) && net.has(2, r) && net.has(3, r)));
    assert!(!net.has(0, &requests[0]), "replica 0 heard nothing back");
    // Its window is full: the next request of its clients waits.
    net.deaf.clear();
    net.submit(0, b"next".to_vec());
    net.run();
    assert_eq!(net.nodes[0].waiting_len(), 1);
    assert!(!net.has(1, b"next"), "nothing makes room by itself: the lost messages never come back");
    // The others ordered those requests; once replica 0 delivers them from the order, their
    // slots are free and the waiting request goes out and is delivered everywhere.
    for request in &requests[..IN_FLIGHT - 1] {
        let step = net.nodes[0].ordered(&replication::crypto::digest(request), &mut net.rng);
        net.dispatch(0, step);
    }
    net.run();
    assert_eq!(net.nodes[0].waiting_len(), 0, "one free slot suffices");
    assert!((0..4).all(|p| net.has(p, b"next")), "the waiting request was broadcast and delivered");
    // A digest that is no broadcast of ours changes nothing.
    let step = net.nodes[0].ordered(&[9; 32], &mut net.rng);
    assert!(step.messages.is_empty() && step.output.is_empty());
    assert_eq!(net.faults, 0);
}

#[test]
fn a_replica_slow_to_deliver_still_echoes_broadcasts_that_reach_it_ahead_of_its_window() {
    // Replica 2 is down, so every instance needs the echoes of all of 0, 1 and 3. Replica 1
    // hears 3's readys late: it echoes and readies sender 0's broadcasts (0 and 3 deliver
    // them with its ready, and 0 moves its window on) but delivers none itself, so its window
    // stays behind while 0 sends for instances `WINDOW` and up. Those messages are sent once:
    // had 1 dropped them it would never have the value from 0, never echo, and the instance
    // would never complete anywhere (its request never ordered, its slot in 0's window taken
    // for good).
    let mut net = Net::new(4, 1);
    net.cut.insert(2);
    net.late = |(from, to, (_, _, message))| *from == 3 && *to == 1 && matches!(message, RbcMessage::Ready(_));
    let total = 2 * WINDOW;
    let requests: Vec<Vec<u8>> = (0..total).map(|i| format!("request {i}").into_bytes()).collect();
    // One at a time, so each travels in its own broadcast (instance `i` carries request `i`).
    for request in &requests {
        net.submit(0, request.clone());
        net.run();
    }
    assert!(net.delivered[1].is_empty(), "replica 1 delivered nothing yet");
    for (i, request) in requests.iter().enumerate() {
        assert!(net.has(0, request) && net.has(3, request), "replicas 0 and 3 delivered request {i}");
    }
    assert_eq!(net.nodes[0].waiting_len(), 0, "replica 0's window is free again");
    // Once 3's readys arrive, replica 1 delivers every instance it did not give up (those
    // below its window when `t+1` parties showed they were past them: the others delivered
    // them, so they reach the order through the others' batches).
    net.release_late();
    assert_eq!(net.nodes[1].low(0), Some(total));
    for (i, request) in requests.iter().enumerate().skip(WINDOW as usize) {
        assert!(net.has(1, request), "replica 1 delivered request {i}");
    }
    assert_eq!(net.faults, 0);
}

#[test]
fn requests_submitted_while_the_own_broadcasts_are_in_flight_travel_together_in_the_next() {
    let mut net = Net::new(4, 1);
    let requests: Vec<Vec<u8>> = (0..3 * IN_FLIGHT).map(|i| format!("request {i}").into_bytes()).collect();
    // Nothing is delivered until the queue runs: the first `IN_FLIGHT` go out alone, the rest
    // wait and then leave in one broadcast.
    for request in &requests {
        net.submit(0, request.clone());
    }
    assert_eq!(net.nodes[0].waiting_len(), requests.len() - IN_FLIGHT);
    net.run();
    assert_eq!(net.nodes[0].waiting_len(), 0);
    assert_eq!(net.nodes[1].low(0), Some(IN_FLIGHT as u64 + 1), "one more broadcast carried the rest");
    for p in 0..4 {
        let got: Vec<&Vec<u8>> = net.delivered[p].iter().filter(|d| d.sender == 0).map(|d| &d.request).collect();
        assert_eq!(got, requests.iter().collect::<Vec<_>>(), "replica {p} delivered every request once, in order");
    }
    assert_eq!(net.faults, 0);
}

#[test]
fn an_own_broadcast_of_several_requests_is_retired_by_the_order_only_once_all_are_ordered() {
    let mut net = Net::new(4, 1);
    net.deaf.insert(0);
    let first: Vec<Vec<u8>> = (0..IN_FLIGHT).map(|i| format!("alone {i}").into_bytes()).collect();
    let batch: Vec<Vec<u8>> = (0..3).map(|i| format!("together {i}").into_bytes()).collect();
    for request in first.iter().chain(&batch) {
        net.submit(0, request.clone());
    }
    net.run();
    // Every own broadcast is undelivered at replica 0; the batch waits for room.
    assert_eq!(net.nodes[0].waiting_len(), batch.len());
    for request in &first {
        let step = net.nodes[0].ordered(&replication::crypto::digest(request), &mut net.rng);
        net.dispatch(0, step);
    }
    net.run();
    assert_eq!(net.nodes[0].waiting_len(), 0, "the batch went out in one broadcast");
    assert!(batch.iter().all(|r| (1..4).all(|p| net.has(p, r))));
    let low = net.nodes[0].low(0);
    for request in &batch[..2] {
        let step = net.nodes[0].ordered(&replication::crypto::digest(request), &mut net.rng);
        assert!(step.messages.is_empty());
    }
    assert_eq!(net.nodes[0].low(0), low, "a request of the batch is still unordered");
    let step = net.nodes[0].ordered(&replication::crypto::digest(&batch[2]), &mut net.rng);
    net.dispatch(0, step);
    assert_eq!(net.nodes[0].low(0), low.map(|l| l + 1), "all ordered: the broadcast is retired");
    assert_eq!(net.faults, 0);
}

#[test]
fn a_broadcast_whose_value_is_not_a_batch_of_requests_is_blamed_on_its_sender_by_every_replica() {
    let mut net = Net::new(4, 1);
    // Party 1 (Byzantine) reliably broadcasts bytes that are no batch: every replica delivers the
    // same value and blames 1, and nothing is output.
    for to in 0..4 {
        net.deliver(1, to, (1, 0, RbcMessage::Send(b"not cbor".to_vec())));
    }
    net.run();
    assert!((0..4).all(|p| net.delivered[p].is_empty()));
    assert_eq!(net.faults, 4, "each replica blamed the sender once");
    assert!((0..4).all(|p| net.nodes[p].low(1) == Some(1)), "the instance is done everywhere");
}
