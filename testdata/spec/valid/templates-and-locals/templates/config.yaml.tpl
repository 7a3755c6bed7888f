workers: ${workers}
version: ${version}
