"""Where the worker keeps what it received: the embedded journal and the InfluxDB writer."""
