//! Leader election among the daemon's replicas with a `coordination.k8s.io/v1` Lease, through
//! kube-lease-manager (which renews the Lease, takes over an expired one and releases it).

use super::{Cluster, ClusterError};
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use std::time::Duration;
use tokio::sync::watch;

/// This replica's part in an election. Dropping every receiver releases the Lease.
pub struct Leadership {
    leader: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
}

impl Cluster {
    /// Joins the election for Lease `name` in `namespace` as `identity`; the Lease lasts
    /// `duration` without renewal and is renewed a third of it before it runs out.
    pub async fn elect_leader(&self, namespace: &str, name: &str, identity: &str, duration: Duration) -> Result<Leadership, ClusterError> {
        let seconds = duration.as_secs().max(2);
        let build = || {
            LeaseManagerBuilder::new(self.client.clone(), name)
                .with_namespace(namespace)
                .with_identity(identity)
                .with_duration(seconds)
                .with_grace((seconds / 3).max(1))
                .build()
        };
        let manager = match build().await {
            // The namespace is missing (a first start outside deploy/): create it, as apply does.
            Err(LeaseManagerError::KubeError(kube::Error::Api(status))) if status.code == 404 => {
                self.create_namespace(namespace).await?;
                build().await
            }
            other => other,
        };
        let manager = manager.map_err(|e| match e {
            LeaseManagerError::KubeError(e) => ClusterError::from(e),
            other => ClusterError::Unreachable(other.to_string()),
        })?;
        let (leader, task) = manager.watch().await;
        Ok(Leadership { leader, task })
    }
}

impl Leadership {
    /// Waits until this replica holds the Lease.
    pub async fn acquired(&mut self) -> Result<(), ClusterError> {
        while !*self.leader.borrow_and_update() {
            self.leader.changed().await.map_err(|_| ClusterError::Unreachable("the leader election stopped".into()))?;
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
