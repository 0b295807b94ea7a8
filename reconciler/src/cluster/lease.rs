//! Leader election among the daemon's replicas with a `coordination.k8s.io/v1` Lease, through
//! kube-lease-manager (which renews the Lease, takes over an expired one and releases it). A
//! standby also looks at the Lease every second: the manager sleeps until a Lease held by another
//! would expire, and a Lease released on SIGTERM is taken at once.

use super::{Cluster, ClusterError};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use std::time::Duration;
use tokio::sync::watch;

/// This replica's part in an election. Dropping every receiver releases the Lease.
pub struct Leadership {
    leader: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    election: Election,
}

/// What joining the election takes.
struct Election {
    cluster: Cluster,
    namespace: String,
    name: String,
    identity: String,
    seconds: u64,
}

impl Election {
    async fn join(&self) -> Result<LeaseManager, ClusterError> {
        let build = || {
            LeaseManagerBuilder::new(self.cluster.client.clone(), &self.name)
                .with_namespace(&self.namespace)
                .with_identity(&self.identity)
                .with_duration(self.seconds)
                .with_grace((self.seconds / 3).max(1))
                .build()
        };
        let manager = match build().await {
            // The namespace is missing (a first start outside deploy/): create it, as apply does.
            Err(LeaseManagerError::KubeError(kube::Error::Api(status))) if status.code == 404 => {
                self.cluster.create_namespace(&self.namespace).await?;
                build().await
            }
            other => other,
        };
        manager.map_err(|e| match e {
            LeaseManagerError::KubeError(e) => ClusterError::from(e),
            other => ClusterError::Unreachable(other.to_string()),
        })
    }

    /// Whether no one holds the Lease (a leader released it); an unreadable Lease is not free.
    async fn free(&self) -> bool {
        let api: Api<Lease> = Api::namespaced(self.cluster.client.clone(), &self.namespace);
        match api.get_opt(&self.name).await {
            Ok(Some(lease)) => lease.spec.and_then(|spec| spec.holder_identity).is_none_or(|holder| holder.is_empty()),
            _ => false,
        }
    }
}

impl Cluster {
    /// Joins the election for Lease `name` in `namespace` as `identity`; the Lease lasts
    /// `duration` without renewal and is renewed a third of it before it runs out.
    pub async fn elect_leader(&self, namespace: &str, name: &str, identity: &str, duration: Duration) -> Result<Leadership, ClusterError> {
        let election = Election {
            cluster: self.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            seconds: duration.as_secs().max(2),
        };
        let (leader, task) = election.join().await?.watch().await;
        Ok(Leadership { leader, task, election })
    }
}

impl Leadership {
    /// Waits until this replica holds the Lease.
    pub async fn acquired(&mut self) -> Result<(), ClusterError> {
        let mut look = tokio::time::interval(Duration::from_secs(1));
        while !*self.leader.borrow_and_update() {
            tokio::select! {
                changed = self.leader.changed() => {
                    changed.map_err(|_| ClusterError::Unreachable("the leader election stopped".into()))?;
                }
                _ = look.tick() => {
                    if self.election.free().await {
                        // The manager would wait for the released Lease to expire: join again,
                        // and the new manager takes the free Lease at once.
                        self.task.abort();
                        (self.leader, self.task) = self.election.join().await?.watch().await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Leadership changes from now on (`false`: the Lease was lost).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Gives the Lease up, so that a standby takes over at once. Every receiver from
    /// `subscribe` must be dropped first.
    pub async fn release(self) {
        drop(self.leader);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("released the leader lease"),
            Ok(Ok(Err(e))) => tracing::warn!("could not release the leader lease: {e}"),
            _ => tracing::warn!("could not release the leader lease in time; it expires by itself"),
        }
    }
}
