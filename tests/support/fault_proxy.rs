//! A TCP proxy in front of the emulator that can simulate an outage: while
//! it is down, every open connection is cut and new ones are closed at once,
//! so SDK calls fail with network errors as they would if AWS (or the path
//! to it) went away in the middle of a batch.

use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    down: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Proxies 127.0.0.1:<free port> to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (down, _) = watch::channel(false);
        let down = Arc::new(down);
        let task = tokio::spawn({
            let down = down.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let mut down_rx = down.subscribe();
                    if *down_rx.borrow() {
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        let mut client = client;
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = down_rx.wait_for(|down| *down) => {}
                        }
                    });
                }
            }
        });
        Self {
            endpoint,
            down,
            task,
        }
    }

    /// Starts (true) or ends (false) the outage.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
