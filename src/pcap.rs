//! Classic pcap files (the format net_pcap reads and writes).
