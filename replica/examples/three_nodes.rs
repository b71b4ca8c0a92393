//! Three replicated nodes in three processes on loopback HTTP: form the
//! cluster, write through the leader, kill the leader while a second
//! client is writing, write again, check that no acknowledged write was
//! lost or applied twice, then restart the killed node from its files and
//! watch it catch up.
//!
//! Run with `cargo run -p roomstate-replica --example three_nodes`.
//!
//! Without arguments this is the driver: it starts itself three times with
//! `--node N --dir D` (each node binds 127.0.0.1:0 and prints its
//! address), tells node 1 to initialize the cluster of all three, then
//! acts as a client. A node reads commands from its stdin (`init ...`,
//! `status`) and exits when stdin closes, so no node outlives the driver;
//! the driver also kills any node still running in a drop guard. It exits
//! 0 only if every check held.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Process, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roomstate::{Actor, Command, Notify, Op, Profile, Success, Write};
use roomstate_replica::http::{
    raft_config, wall_clock, HttpNode, NodeConfig, WriteClient, Written,
};
use roomstate_replica::NodeId;

/// How long the driver waits for a node to start or answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the driver waits for a restarted node to catch up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the driver waits for a node to exit after its stdin closed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Client 2's writes around the leader's kill.
const BURST: usize = 40;
const USAGE: &str = "usage: three_nodes [--node N --dir DIR [--port P]]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--node") => node_main(&args),
        None => driver_main(),
        Some(_) => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("three_nodes: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// A node process

/// `--node N --dir D [--port P]`: run node N on its files in D, on port P
/// (a restarted node must keep the address its peers know) or a fresh one,
/// until stdin closes.
fn node_main(args: &[String]) -> Result<(), String> {
    let id: NodeId = args.get(2).and_then(|s| s.parse().ok()).ok_or(USAGE)?;
    let dir = match (args.get(3).map(String::as_str), args.get(4)) {
        (Some("--dir"), Some(d)) => PathBuf::from(d),
        _ => return Err(USAGE.into()),
    };
    let port: u16 = match (args.get(5).map(String::as_str), args.get(6)) {
        (Some("--port"), Some(p)) => p.parse().map_err(|_| USAGE)?,
        (None, None) => 0,
        _ => return Err(USAGE.into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let cfg = NodeConfig {
            id,
            dir,
            profile: Profile::netease(),
            raft: raft_config().map_err(|e| e.to_string())?,
        };
        let node = HttpNode::start(cfg, listener, Arc::new(wall_clock))
            .await
            .map_err(|e| e.to_string())?;
        say(&format!("listening {}", node.addr()));

        // Lines from the driver; the channel closes when stdin does.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            if let Some(list) = line.strip_prefix("init ") {
                let members = parse_members(list)?;
                match node.initialize(&members).await {
                    Ok(()) => say(&format!("initialized {} nodes", members.len())),
                    Err(e) => say(&format!("initialize failed: {e}")),
                }
            } else if line == "status" {
                let sm = node.state_machine();
                let applied = sm.last_applied().map_or(0, |l| l.index);
                let engine = fnv1a(&sm.engine_snapshot());
                say(&format!("status applied={applied} engine={engine:016x}"));
            }
        }
        node.stop().await;
        Ok(())
    })
}

/// `1=127.0.0.1:4000 2=...` as (id, address) pairs.
fn parse_members(list: &str) -> Result<Vec<(NodeId, String)>, String> {
    list.split_whitespace()
        .map(|m| {
            let (id, addr) = m.split_once('=').ok_or(format!("bad member {m}"))?;
            let id = id.parse().map_err(|_| format!("bad node id {id}"))?;
            Ok((id, addr.to_string()))
        })
        .collect()
}

/// One line to the driver.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// FNV-1a: a fingerprint of the engine snapshot that is the same in every
/// process (std's hashers make no such promise).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------
// The driver

/// One node process and its output lines.
struct NodeProcess {
    id: NodeId,
    addr: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

/// Kills the node if it is still running when dropped, so that no process
/// outlives the driver, whatever path it leaves by.
impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProcess {
    /// Starts `--node id` on `dir` (on `port` if given) and waits for its
    /// address.
    fn spawn(id: NodeId, dir: &Path, port: Option<u16>) -> Result<NodeProcess, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut process = Process::new(exe);
        process
            .arg("--node")
            .arg(id.to_string())
            .arg("--dir")
            .arg(dir);
        if let Some(port) = port {
            process.arg("--port").arg(port.to_string());
        }
        let mut child = process
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // From here on, dropping `node` kills the process.
        let mut node = NodeProcess {
            id,
            addr: String::new(),
            child,
            stdin,
            lines,
        };
        let first = node.answer("listening ")?;
        node.addr = first;
        Ok(node)
    }

    /// Sends one line to the node.
    fn tell(&mut self, line: &str) -> Result<(), String> {
        let id = self.id;
        let stdin = self.stdin.as_mut().ok_or(format!("node {id} is stopped"))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("node {id}: {e}"))
    }

    /// The rest of the node's next line that starts with `prefix`.
    fn answer(&mut self, prefix: &str) -> Result<String, String> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(prefix) {
                    Some(rest) => return Ok(rest.to_string()),
                    None => println!("    [node {}] {line}", self.id),
                },
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("node {} did not say {prefix:?}", self.id))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("node {} exited", self.id))
                }
            }
        }
    }

    /// The node's last applied index and engine fingerprint.
    fn status(&mut self) -> Result<String, String> {
        self.tell("status")?;
        self.answer("status ")
    }
}

/// The node processes.
struct Nodes(Vec<NodeProcess>);

impl Nodes {
    fn get(&mut self, id: NodeId) -> Result<&mut NodeProcess, String> {
        self.0
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or(format!("no node {id}"))
    }

    /// Waits until every node reports the same status; returns it.
    fn agree(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            let statuses = self
                .0
                .iter_mut()
                .map(NodeProcess::status)
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(first) = statuses.first() {
                if statuses.iter().all(|s| s == first) {
                    return Ok(first.clone());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("nodes disagree: {statuses:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn driver_main() -> Result<(), String> {
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = |id: NodeId| root.path().join(format!("node{id}"));
    let mut nodes = Nodes(Vec::new());

    println!("step 1: start three node processes on loopback");
    for id in 1..=3 {
        let node = NodeProcess::spawn(id, &dir(id), None)?;
        println!(
            "  node {id}: pid {} listening on {}",
            node.child.id(),
            node.addr
        );
        nodes.0.push(node);
    }

    println!("step 2: node 1 initializes the cluster {{1, 2, 3}}");
    let members: Vec<String> = nodes
        .0
        .iter()
        .map(|n| format!("{}={}", n.id, n.addr))
        .collect();
    let node1 = nodes.get(1)?;
    node1.tell(&format!("init {}", members.join(" ")))?;
    println!("  node 1 initialized {}", node1.answer("initialized ")?);

    let addrs: Vec<String> = nodes.0.iter().map(|n| n.addr.clone()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut client = WriteClient::new(1, addrs.clone());

    println!("step 3: write through the leader (the client follows redirects)");
    let room = || "stage".into();
    let before = [
        (
            "create room stage",
            Command::CreateRoom {
                room: room(),
                creator: "host".into(),
            },
        ),
        (
            "ann joins",
            Command::Join {
                room: room(),
                user: "ann".into(),
            },
        ),
        ("ann lines up for the mic", offer("ann")),
    ];
    let mut leader = 0;
    for (what, command) in before {
        let sent = Instant::now();
        let w = rt
            .block_on(client.write(command))
            .map_err(|e| e.to_string())?;
        report(what, &w, sent.elapsed())?;
        leader = w.leader_id;
    }

    println!(
        "step 4: kill the leader, node {leader} (SIGKILL), while client 2 sets an attribute {BURST} times"
    );
    let done = Arc::new(AtomicUsize::new(0));
    let burst = rt.spawn(write_burst(WriteClient::new(2, addrs), Arc::clone(&done)));
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while done.load(Ordering::SeqCst) < BURST / 4 {
        if Instant::now() > deadline || burst.is_finished() {
            return Err("the burst did not get going".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let before_kill = done.load(Ordering::SeqCst);
    let killed = nodes.get(leader)?;
    let pid = killed.child.id();
    let port = killed
        .addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .ok_or("leader address has no port")?;
    killed.child.kill().map_err(|e| e.to_string())?;
    killed.child.wait().map_err(|e| e.to_string())?;
    println!("  node {leader} (pid {pid}) is dead; client 2 had {before_kill} writes acknowledged");
    let (acked, longest) = rt
        .block_on(burst)
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("burst: {e}"))?;
    let leaders: std::collections::BTreeSet<NodeId> = acked.iter().map(|w| w.leader_id).collect();
    println!(
        "  client 2: all {} writes acknowledged, by leaders {leaders:?}; the longest (across the election) took {} ms",
        acked.len(),
        longest.as_millis()
    );

    println!("step 5: write again; a new leader takes it");
    let started = Instant::now();
    let after = [
        (
            "bo joins",
            Command::Join {
                room: room(),
                user: "bo".into(),
            },
        ),
        ("bo lines up for the mic", offer("bo")),
    ];
    let mut new_leader = leader;
    for (what, command) in after {
        let sent = Instant::now();
        let w = rt
            .block_on(client.write(command))
            .map_err(|e| e.to_string())?;
        report(what, &w, sent.elapsed())?;
        new_leader = w.leader_id;
    }
    println!(
        "  new leader: node {new_leader}; the first write after the kill took {} ms",
        started.elapsed().as_millis()
    );
    if new_leader == leader {
        return Err(format!("the dead node {leader} answered"));
    }

    println!("step 6: list the mic line through the log");
    let w = rt
        .block_on(client.write(Command::QueueList { room: room() }))
        .map_err(|e| e.to_string())?;
    let line: Vec<String> = match &w.result {
        Ok(reply) => match &reply.outcome {
            Ok(Success::Elements(l)) => l.elements.iter().map(|e| e.key.to_string()).collect(),
            other => return Err(format!("queue list answered {other:?}")),
        },
        Err(refused) => return Err(format!("queue list refused: {refused:?}")),
    };
    println!("  line: {line:?} (log index {})", w.log_index);
    if line != ["mic.ann", "mic.bo"] {
        return Err("the line lost a write".into());
    }
    let w = rt
        .block_on(client.write(Command::Read {
            room: room(),
            keys: None,
        }))
        .map_err(|e| e.to_string())?;
    let report = match &w.result {
        Ok(reply) => match &reply.outcome {
            Ok(Success::Read(r)) => r.clone(),
            other => return Err(format!("read answered {other:?}")),
        },
        Err(refused) => return Err(format!("read refused: {refused:?}")),
    };
    let last = (BURST - 1).to_string();
    match report.attributes.iter().find(|a| a.key.as_str() == "burst") {
        Some(a) if a.value.as_str() == last => {}
        other => return Err(format!("burst is {other:?}, not {last}")),
    }
    // Every write changes the room once (each burst write a new value), so
    // the room's seq counts the applied writes: one fewer is a lost write;
    // a retry applied again after a later write would count too (and set
    // an old value back).
    let writes = 5 + BURST as u64;
    println!(
        "  attribute burst = {last}; room seq {} = {writes} writes: none lost, none re-applied late",
        report.seq
    );
    if report.seq != writes {
        return Err(format!("room seq {} after {writes} writes", report.seq));
    }

    println!("step 7: restart node {leader} from its files (same port); it catches up");
    let restarted = NodeProcess::spawn(leader, &dir(leader), Some(port))?;
    println!(
        "  node {leader}: pid {} listening on {}",
        restarted.child.id(),
        restarted.addr
    );
    *nodes.get(leader)? = restarted;
    let status = nodes.agree()?;
    println!("  all three nodes: {status}");

    println!("step 8: stop the nodes");
    drop(rt);
    for n in &mut nodes.0 {
        n.stdin = None; // a node exits when its stdin closes
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for n in &mut nodes.0 {
        loop {
            match n.child.try_wait() {
                Ok(Some(status)) => {
                    println!("  node {} exited ({status})", n.id);
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = n.child.kill();
                    let _ = n.child.wait();
                    return Err(format!("node {} did not stop; killed it", n.id));
                }
            }
        }
    }
    println!("done: every step held, no node process left");
    Ok(())
}

/// Client 2's writes: `burst = i` in the stage for `i` in `0..BURST`, one
/// at a time, counted in `done` as they are acknowledged.
async fn write_burst(
    mut client: WriteClient,
    done: Arc<AtomicUsize>,
) -> Result<(Vec<Written>, Duration), String> {
    let mut acked = Vec::new();
    let mut longest = Duration::ZERO;
    for i in 0..BURST {
        let sent = Instant::now();
        let set = Write::new("stage", Actor::Admin).op(Op::set("burst", i.to_string()));
        let w = client
            .write(Command::Write(set))
            .await
            .map_err(|e| e.to_string())?;
        match &w.result {
            Ok(reply) if reply.outcome.is_ok() => {}
            other => return Err(format!("burst = {i}: {other:?}")),
        }
        longest = longest.max(sent.elapsed());
        acked.push(w);
        done.fetch_add(1, Ordering::SeqCst);
    }
    Ok((acked, longest))
}

fn offer(user: &str) -> Command {
    Command::QueueOffer {
        room: "stage".into(),
        operator: Actor::user(user),
        key: format!("mic.{user}").into(),
        value: format!("{{\"user\":\"{user}\"}}").into(),
        transient: false,
        notify: Notify::default(),
    }
}

/// Prints one write's result; a refused or rejected write is an error.
fn report(what: &str, w: &Written, took: Duration) -> Result<(), String> {
    match &w.result {
        Ok(reply) => match &reply.outcome {
            Ok(success) => {
                let shown = match success {
                    Success::Done => "done".to_string(),
                    other => format!("{other:?}"),
                };
                println!(
                    "  {what}: applied at log index {} by leader node {} (serial {}) in {:.1} ms: {shown}, events {}..{}",
                    w.log_index,
                    w.leader_id,
                    w.serial,
                    took.as_secs_f64() * 1e3,
                    reply.events.start,
                    reply.events.end
                );
                Ok(())
            }
            Err(rejection) => Err(format!("{what}: rejected {rejection:?}")),
        },
        Err(refused) => Err(format!("{what}: refused {refused:?}")),
    }
}
