host: 127.0.0.1
workers: ${workers}
data_dir: ${data_dir}
rate_limiting:
  enabled: true
  max_requests: ${rate_limit}
  window: 60
