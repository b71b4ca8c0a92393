//! Three replicated nodes in three processes on loopback HTTP: form the
//! cluster, write through the leader, kill the leader, write again.
//!
//! Run with `cargo run -p roomstate-replica --example three_nodes`.
//!
//! Without arguments this is the driver: it starts itself three times with
//! `--node N --dir D` (each node binds 127.0.0.1:0 and prints its
//! address), tells node 1 to initialize the cluster of all three, then
//! acts as a client. A node exits when its stdin closes, so no node
//! outlives the driver; the driver also kills any node left in a drop
//! guard. It exits 0 only if every check held.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Process, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roomstate::{Actor, Command, Notify, Profile, Success};
use roomstate_replica::http::{
    raft_config, wall_clock, HttpNode, NodeConfig, WriteClient, Written,
};
use roomstate_replica::NodeId;

/// How long the driver waits for a node to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the driver waits for a node to exit after its stdin closed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("--node") => node_main(&args),
        _ => driver_main(),
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

/// `--node N --dir D`: run node N on its files in D until stdin closes.
fn node_main(args: &[String]) -> Result<(), String> {
    let id: NodeId = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .ok_or("usage: three_nodes --node N --dir DIR")?;
    let dir = match (args.get(3).map(String::as_str), args.get(4)) {
        (Some("--dir"), Some(d)) => PathBuf::from(d),
        _ => return Err("usage: three_nodes --node N --dir DIR".into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
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
        println!("listening {}", node.addr());
        flush();

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
                    Ok(()) => println!("initialized a cluster of {} nodes", members.len()),
                    Err(e) => println!("initialize failed: {e}"),
                }
                flush();
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

fn flush() {
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------------------
// The driver

/// One node process.
struct NodeProcess {
    id: NodeId,
    addr: String,
    child: Child,
    stdin: Option<ChildStdin>,
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

/// The node processes.
struct Nodes(Vec<NodeProcess>);

impl Nodes {
    fn get(&mut self, id: NodeId) -> Result<&mut NodeProcess, String> {
        self.0
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or(format!("no node {id}"))
    }
}

/// Starts `--node id` on `dir` and waits for its address. The node's other
/// output lines are echoed with its id.
fn spawn_node(id: NodeId, dir: &Path) -> Result<NodeProcess, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Process::new(exe)
        .arg("--node")
        .arg(id.to_string())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start node {id}: {e}"))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for line in lines.map_while(Result::ok) {
            println!("    [node {id}] {line}");
        }
    });
    // From here on, dropping `node` kills the process.
    let mut node = NodeProcess {
        id,
        addr: String::new(),
        child,
        stdin,
    };
    let first = rx
        .recv_timeout(START_TIMEOUT)
        .map_err(|_| format!("node {id} did not start"))?;
    let addr = first
        .strip_prefix("listening ")
        .ok_or(format!("node {id} said {first:?}"))?
        .to_string();
    node.addr = addr;
    Ok(node)
}

fn driver_main() -> Result<(), String> {
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut nodes = Nodes(Vec::new());

    println!("step 1: start three node processes on loopback");
    for id in 1..=3 {
        let dir = root.path().join(format!("node{id}"));
        let node = spawn_node(id, &dir)?;
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
    let init = format!("init {}\n", members.join(" "));
    let stdin = nodes.get(1)?.stdin.as_mut().ok_or("node 1 has no stdin")?;
    stdin
        .write_all(init.as_bytes())
        .and_then(|()| stdin.flush())
        .map_err(|e| e.to_string())?;

    let addrs: Vec<String> = nodes.0.iter().map(|n| n.addr.clone()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut client = WriteClient::new(1, addrs);

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
        let w = rt
            .block_on(client.write(command))
            .map_err(|e| e.to_string())?;
        report(what, &w)?;
        leader = w.leader_id;
    }

    println!("step 4: kill the leader, node {leader}");
    let killed = nodes.get(leader)?;
    let pid = killed.child.id();
    killed.stdin = None;
    killed.child.kill().map_err(|e| e.to_string())?;
    killed.child.wait().map_err(|e| e.to_string())?;
    println!("  node {leader} (pid {pid}) is dead");

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
        let w = rt
            .block_on(client.write(command))
            .map_err(|e| e.to_string())?;
        report(what, &w)?;
        new_leader = w.leader_id;
    }
    println!(
        "  new leader: node {new_leader}, first write after the kill took {} ms",
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

    println!("step 7: stop the nodes");
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
                    println!("  node {} killed after {STOP_TIMEOUT:?}", n.id);
                    break;
                }
            }
        }
    }
    println!("done: every step held, no node process left");
    Ok(())
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
fn report(what: &str, w: &Written) -> Result<(), String> {
    match &w.result {
        Ok(reply) => match &reply.outcome {
            Ok(success) => {
                let shown = match success {
                    Success::Done => "done".to_string(),
                    other => format!("{other:?}"),
                };
                println!(
                    "  {what}: applied at log index {} by leader node {} (serial {}): {shown}, events {}..{}",
                    w.log_index, w.leader_id, w.serial, reply.events.start, reply.events.end
                );
                Ok(())
            }
            Err(rejection) => Err(format!("{what}: rejected {rejection:?}")),
        },
        Err(refused) => Err(format!("{what}: refused {refused:?}")),
    }
}
