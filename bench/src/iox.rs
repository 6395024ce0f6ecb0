//! iceoryx2 0.10 publish-subscribe as a peer: one service per direction, slices of `size` bytes, the loan API on
//! the sending side and a busy `receive` loop on the other; or, with `event`, an event service beside it whose
//! listener the receiver sleeps on. Each side creates its own node in its own process.

use std::time::{Duration, Instant};

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;

use crate::transport::{Channel, Rx, Tx, slots};

type EventService = iceoryx2::service::port_factory::event::PortFactory<ipc::Service>;

pub struct IoxChannel {
    name: String,
    size: usize,
    event: bool,
}

/// Retries `f` for up to 10 s: both sides race to create the same service.
fn retry<T, E: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> Result<T, E>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(_) if start.elapsed() < Duration::from_secs(10) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("iceoryx2 {what}: {e:?}"),
        }
    }
}

impl IoxChannel {
    pub fn new(size: usize, id: u64, event: bool) -> Self {
        Self {
            name: format!("shmfusion-bench/{}/{id}", std::process::id()),
            size,
            event,
        }
    }

    /// The event service beside the publish-subscribe one (`event` channels only).
    fn event_service(&self, node: &Node<ipc::Service>) -> Option<EventService> {
        if !self.event {
            return None;
        }
        let name: ServiceName = format!("{}/event", self.name)
            .as_str()
            .try_into()
            .expect("service name");
        Some(retry("event service", || {
            node.service_builder(&name).event().open_or_create()
        }))
    }

    /// The node and the service, created or opened (both sides race to create it: retried briefly).
    fn open(&self) -> (Node<ipc::Service>, PubSub<ipc::Service, [u8], ()>) {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>().expect("iceoryx2 node");
        let name: ServiceName = self.name.as_str().try_into().expect("service name");
        let service = retry("publish-subscribe service", || {
            node.service_builder(&name)
                .publish_subscribe::<[u8]>()
                .max_publishers(1)
                .max_subscribers(1)
                .history_size(0)
                .subscriber_max_buffer_size(slots(self.size))
                .enable_safe_overflow(false)
                .open_or_create()
        });
        (node, service)
    }
}

struct IoxTx {
    notifier: Option<Notifier<ipc::Service>>,
    _event: Option<EventService>,
    publisher: Publisher<ipc::Service, [u8], ()>,
    _service: PubSub<ipc::Service, [u8], ()>,
    _node: Node<ipc::Service>,
}

impl Tx for IoxTx {
    fn send(&mut self, msg: &[u8]) {
        let sample = self.publisher.loan_slice_uninit(msg.len()).expect("iceoryx2 loan");
        sample.write_from_slice(msg).send().expect("iceoryx2 send");
        if let Some(n) = &self.notifier {
            n.notify().expect("iceoryx2 notify");
        }
    }
}

struct IoxRx {
    listener: Option<Listener<ipc::Service>>,
    _event: Option<EventService>,
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    _service: PubSub<ipc::Service, [u8], ()>,
    _node: Node<ipc::Service>,
}

impl Rx for IoxRx {
    fn recv(&mut self, msg: &mut [u8]) {
        loop {
            if let Some(sample) = self.subscriber.receive().expect("iceoryx2 receive") {
                return msg.copy_from_slice(sample.payload());
            }
            match &self.listener {
                // A notification that came after the `receive` above is pending: this returns at once.
                Some(l) => {
                    l.blocking_wait(|_| {}).expect("iceoryx2 wait");
                }
                None => std::hint::spin_loop(),
            }
        }
    }
}

impl Channel for IoxChannel {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let (node, service) = self.open();
        let publisher = service
            .publisher_builder()
            .initial_max_slice_len(self.size)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .expect("iceoryx2 publisher");
        let event = self.event_service(&node);
        // Samples sent before the subscriber exists are lost (no history), and so are notifications sent before
        // the listener exists: wait for both.
        let start = Instant::now();
        while service.dynamic_config().number_of_subscribers() == 0
            || event
                .as_ref()
                .is_some_and(|e| e.dynamic_config().number_of_listeners() == 0)
        {
            assert!(start.elapsed() < Duration::from_secs(10), "no iceoryx2 subscriber came");
            std::thread::sleep(Duration::from_micros(200));
        }
        let notifier = event
            .as_ref()
            .map(|e| e.notifier_builder().create().expect("iceoryx2 notifier"));
        Box::new(IoxTx {
            notifier,
            _event: event,
            publisher,
            _service: service,
            _node: node,
        })
    }

    fn rx(&self) -> Box<dyn Rx + '_> {
        let (node, service) = self.open();
        let subscriber = service.subscriber_builder().create().expect("iceoryx2 subscriber");
        let event = self.event_service(&node);
        let listener = event
            .as_ref()
            .map(|e| e.listener_builder().create().expect("iceoryx2 listener"));
        Box::new(IoxRx {
            listener,
            _event: event,
            subscriber,
            _service: service,
            _node: node,
        })
    }
}

/// iceoryx2's objects in /dev/shm (it keeps a global management object there after its last node is gone).
pub fn shm_objects() -> Vec<std::path::PathBuf> {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("iox2_")))
        .collect()
}

/// Removes the iceoryx2 objects that appeared since `before` (ours: the benchmark leaves nothing behind).
pub fn remove_new_objects(before: &[std::path::PathBuf]) {
    for p in shm_objects() {
        if !before.contains(&p) {
            let _ = std::fs::remove_file(&p);
        }
    }
}
