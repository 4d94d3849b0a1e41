//! Request dissemination windows: a replica that missed a sender's broadcasts for good is not
//! deaf to that sender forever (its window slides once `t+1` parties show they are past it), and
//! `t` parties alone cannot make it slide.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use replication::atomic::dissemination::{Disseminated, Dissemination, DisseminationStep, WINDOW};
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
        Net { nodes, queue: VecDeque::new(), cut: BTreeSet::new(), delivered: vec![Vec::new(); n], faults: 0, rng }
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
                if !self.cut.contains(&from) && !self.cut.contains(&to) {
                    self.queue.push_back((from, to, tm.message.clone()));
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
