use super::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Answers from a list that the test changes; `None` never answers at all.
struct Fake(Mutex<Option<Vec<SocketAddr>>>);

#[async_trait]
impl Resolve for Fake {
    async fn resolve(&self, _name: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let answer = self.0.lock().expect("fake lock").clone();
        match answer {
            Some(addrs) => Ok(addrs),
            None => std::future::pending().await,
        }
    }
}

fn spec(timeout_ms: u64) -> DnsSpec {
    DnsSpec {
        name: "svc.test".into(),
        port: 80,
        refresh: Duration::from_secs(5),
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

fn addrs(set: &BTreeSet<Backend>) -> BTreeSet<SocketAddr> {
    set.iter().filter_map(|b| b.as_inet().copied()).collect()
}

#[tokio::test]
async fn a_resolver_that_never_answers_fails_the_round_after_the_timeout() {
    let d = DnsDiscovery::with_resolver(spec(50), Vec::new(), Box::new(Fake(Mutex::new(None))));
    let started = Instant::now();
    let e = d.discover().await.expect_err("a timeout");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(e.etype(), &pingora::ErrorType::ConnectTimedout);
    assert!(e.to_string().contains("svc.test took longer than 50 ms"), "{e}");
}

#[tokio::test]
async fn each_round_returns_what_the_name_has_now_plus_fixed_targets() {
    let fake = std::sync::Arc::new(Fake(Mutex::new(Some(vec![addr("10.0.0.1:80"), addr("10.0.0.2:80")]))));
    struct Shared(std::sync::Arc<Fake>);
    #[async_trait]
    impl Resolve for Shared {
        async fn resolve(&self, name: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            self.0.resolve(name, port).await
        }
    }
    let fixed = vec![TargetSpec { addr: addr("10.0.0.9:80"), weight: 2 }];
    let d = DnsDiscovery::with_resolver(spec(1000), fixed, Box::new(Shared(fake.clone())));
    let first = addrs(&d.discover().await.expect("first round").0);
    assert_eq!(first, [addr("10.0.0.1:80"), addr("10.0.0.2:80"), addr("10.0.0.9:80")].into());

    *fake.0.lock().expect("fake lock") = Some(vec![addr("10.0.0.2:80"), addr("10.0.0.3:80")]);
    let second = addrs(&d.discover().await.expect("second round").0);
    assert_eq!(second, [addr("10.0.0.2:80"), addr("10.0.0.3:80"), addr("10.0.0.9:80")].into());
    assert_eq!(vanished(&first, &second), vec![addr("10.0.0.1:80")]);
    assert!(vanished(&second, &second).is_empty());
}
