"""What every component uses to reach the API server: the REST client, informers, work
queues, the controller base, leader election, event recording, kubeconfig files, the PKI
and start-up waits with back-off."""
