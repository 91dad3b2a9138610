import java.io.BufferedWriter;
import java.io.FileOutputStream;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.Future;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The test oracle for Ferry's data path: writes and reads records with Kafka's own Java clients,
 * which (unlike kafkajs, the client under test) keep null header values and header order.
 *
 * <pre>
 * produce --bootstrap H --topic T --seed N --profile shapes|steady|compact|refused [options]
 *   shapes:  every legal record shape, in five phases (plain gzip, idempotent snappy,
 *            transactional lz4 with committed and aborted transactions, plain zstd, idempotent
 *            uncompressed with records of --big-bytes); --count records in all
 *   steady:  --count small records at --rate records/s, idempotent, round robin over the
 *            topic's partitions as the producer's metadata sees them (so new partitions get records)
 *   compact: keyed updates in rounds until the topic has lost records to compaction or --deadline-ms
 *   refused: one batch on partition 0: --count small records, one of --big-bytes, --count small
 * dump --bootstrap H --topic T [--isolation read_committed|read_uncommitted] --out FILE
 *   every record up to the end offsets taken at start, as NDJSON:
 *   {"p":0,"o":12,"tt":"CreateTime","ts":1700000000000,"k":base64|null,"v":base64|null,"h":[[key,base64|null],...]}
 * consume-group --bootstrap H --topic T --group G [--commit-ms 1000] [--rate R] [--idle-exit-ms N] [--ignore-header K]
 *   an application: subscribes as consumer group G (read_committed, from the earliest offset when
 *   G has none), prints "r PARTITION OFFSET ID" per record (ID: SHA-256 of key, value and headers,
 *   as recordId below, without header K) at most R records/s, commits what it read every --commit-ms with
 *   commitSync and prints "c"; with --idle-exit-ms it exits once no record came for that long.
 * epochs --bootstrap H --ids ID,ID,...
 *   the producer epoch of each transactional id (Admin describeTransactions), as one JSON line
 *   {"ID":epoch,...}; an id the coordinator does not know is left out.
 * </pre>
 * Produce prints one JSON summary line (with the seed) on stdout.
 */
public final class RecordOracle {
  private static final String[] HEADER_KEYS = {"a", "b", "trace-id", "\u00fcn\u00ef-\u043a\u043b\u044e\u0447-\uD83D\uDD11", "", "schema"};

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>();
    for (int i = 1; i + 1 < argv.length; i += 2) args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
    String mode = argv.length > 0 ? argv[0] : "";
    switch (mode) {
      case "produce" -> produce(args);
      case "dump" -> dump(args);
      case "epochs" -> epochs(args);
      case "consume-group" -> consumeGroup(args);
      default -> {
        System.err.println("usage: RecordOracle produce|dump|epochs --bootstrap host:port ...");
        System.exit(2);
      }
    }
  }

  private static String need(Map<String, String> args, String name) {
    String value = args.get(name);
    if (value == null) throw new IllegalArgumentException("--" + name + " is required");
    return value;
  }

  // ------------------------------------------------------------------------------------------
  // produce
  // ------------------------------------------------------------------------------------------

  private static Properties producerProps(String bootstrap, String compression, boolean idempotent, String transactionalId) {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, String.valueOf(idempotent));
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    // The topic's max.message.bytes is the limit, not the producer's 1 MB default.
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, String.valueOf(4 * 1024 * 1024));
    p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    // Partitions added while producing are seen within a second.
    p.put(ProducerConfig.METADATA_MAX_AGE_CONFIG, "1000");
    if (!idempotent) p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "1");
    if (transactionalId != null) p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
    return p;
  }

  private static byte[] randomBytes(Random random, int length) {
    byte[] bytes = new byte[length];
    random.nextBytes(bytes);
    return bytes;
  }

  /** Null, empty, UTF-8 text, invalid UTF-8, or binary of up to `max` bytes. */
  private static byte[] someBytes(Random random, int max) {
    int pick = random.nextInt(10);
    if (pick == 0) return null;
    if (pick == 1) return new byte[0];
    if (pick == 2) return ("text-" + random.nextInt(1000000) + "-\u00e9\u4e2d").getBytes(StandardCharsets.UTF_8);
    if (pick == 3) return new byte[] {(byte) 0xff, (byte) 0xfe, 0x00, (byte) 0xc3, 0x28, (byte) 0x80};
    return randomBytes(random, 1 + random.nextInt(Math.max(1, max)));
  }

  private static List<Header> someHeaders(Random random) {
    List<Header> headers = new ArrayList<>();
    int pick = random.nextInt(6);
    if (pick == 0) return headers;
    if (pick == 1) {
      // Repeated keys in mixed order: an ordered list, not a map.
      headers.add(new RecordHeader("a", "1".getBytes(StandardCharsets.UTF_8)));
      headers.add(new RecordHeader("b", "2".getBytes(StandardCharsets.UTF_8)));
      headers.add(new RecordHeader("a", "3".getBytes(StandardCharsets.UTF_8)));
      return headers;
    }
    if (pick == 2) {
      headers.add(new RecordHeader("h", (byte[]) null));
      headers.add(new RecordHeader("h2", new byte[0]));
      return headers;
    }
    int count = 1 + random.nextInt(6);
    for (int i = 0; i < count; i++) {
      String key = HEADER_KEYS[random.nextInt(HEADER_KEYS.length)];
      headers.add(new RecordHeader(key, someBytes(random, 64)));
    }
    return headers;
  }

  /** Null (the producer stamps it), now, days old, or up to 30 minutes ahead. */
  private static Long someTimestamp(Random random, long now) {
    return switch (random.nextInt(4)) {
      case 0 -> null;
      case 1 -> now - random.nextInt(1000);
      // Within the shipped 7-day retention, or the broker would delete them under the test.
      case 2 -> now - 86_400_000L * (1 + random.nextInt(5)) - random.nextInt(1_000_000);
      default -> now + random.nextInt(1_800_000);
    };
  }

  private static List<Integer> partitionsOf(KafkaProducer<byte[], byte[]> producer, String topic) {
    return producer.partitionsFor(topic).stream().map(PartitionInfo::partition).sorted().collect(Collectors.toList());
  }

  private static ProducerRecord<byte[], byte[]> someRecord(Random random, String topic, List<Integer> partitions, long now, int maxValueBytes) {
    int partition = partitions.get(random.nextInt(partitions.size()));
    byte[] value = random.nextInt(20) == 0 ? randomBytes(random, 10_000 + random.nextInt(40_000)) : someBytes(random, maxValueBytes);
    return new ProducerRecord<>(topic, partition, someTimestamp(random, now), someBytes(random, 40), value, someHeaders(random));
  }

  private static void produce(Map<String, String> args) throws Exception {
    String bootstrap = need(args, "bootstrap");
    String topic = need(args, "topic");
    long seed = Long.parseLong(args.getOrDefault("seed", String.valueOf(System.nanoTime())));
    String profile = args.getOrDefault("profile", "shapes");
    int count = Integer.parseInt(args.getOrDefault("count", "500"));
    Random random = new Random(seed);
    Map<String, Object> summary = new HashMap<>();
    summary.put("seed", seed);
    summary.put("profile", profile);
    switch (profile) {
      case "shapes" -> produceShapes(bootstrap, topic, seed, random, count, Integer.parseInt(args.getOrDefault("big-bytes", "0")), summary);
      case "steady" -> produceSteady(bootstrap, topic, random, count, Integer.parseInt(args.getOrDefault("rate", "1000")), summary);
      case "compact" -> produceCompact(bootstrap, topic, random, Integer.parseInt(args.getOrDefault("keys", "40")), Long.parseLong(args.getOrDefault("deadline-ms", "60000")), summary);
      case "refused" -> produceRefused(bootstrap, topic, count, Integer.parseInt(need(args, "big-bytes")), summary);
      default -> throw new IllegalArgumentException("--profile must be shapes, steady, compact or refused, not " + profile);
    }
    System.out.println(json(summary));
  }

  private static void produceShapes(String bootstrap, String topic, long seed, Random random, int count, int bigBytes, Map<String, Object> summary) throws Exception {
    long now = System.currentTimeMillis();
    int perPhase = Math.max(1, count / 4);
    int written = 0;
    int aborted = 0;
    // Phase 1 and 4: plain (non-idempotent) producers, gzip and zstd.
    // Phase 2: idempotent snappy. Phase 3: transactional lz4, committed and aborted.
    String[][] plainPhases = {{"gzip", "false"}, {"snappy", "true"}};
    for (String[] phase : plainPhases) {
      try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap, phase[0], Boolean.parseBoolean(phase[1]), null))) {
        List<Integer> partitions = partitionsOf(producer, topic);
        List<Future<RecordMetadata>> sends = new ArrayList<>();
        for (int i = 0; i < perPhase; i++) sends.add(producer.send(someRecord(random, topic, partitions, now, 300)));
        for (Future<RecordMetadata> send : sends) send.get();
        written += perPhase;
      }
    }
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap, "lz4", true, "oracle-" + topic + "-" + seed))) {
      producer.initTransactions();
      List<Integer> partitions = partitionsOf(producer, topic);
      int transactions = 6;
      for (int t = 0; t < transactions; t++) {
        producer.beginTransaction();
        int size = Math.max(1, perPhase / transactions);
        for (int i = 0; i < size; i++) producer.send(someRecord(random, topic, partitions, now, 300));
        // Transactions 1 and 4 are aborted: read_committed readers (and Ferry) must skip them.
        if (t == 1 || t == 4) {
          producer.flush();
          producer.abortTransaction();
          aborted += size;
        } else {
          producer.commitTransaction();
          written += size;
        }
      }
    }
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap, "zstd", false, null))) {
      List<Integer> partitions = partitionsOf(producer, topic);
      List<Future<RecordMetadata>> sends = new ArrayList<>();
      for (int i = 0; i < perPhase; i++) sends.add(producer.send(someRecord(random, topic, partitions, now, 300)));
      for (Future<RecordMetadata> send : sends) send.get();
      written += perPhase;
    }
    int big = 0;
    if (bigBytes > 0) {
      // Uncompressed, so the batch on the wire is the record's size: just under max.message.bytes.
      try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap, "none", true, null))) {
        List<Integer> partitions = partitionsOf(producer, topic);
        List<Future<RecordMetadata>> sends = new ArrayList<>();
        for (int partition : partitions) {
          // A big record between small neighbours, on every partition.
          sends.add(producer.send(someRecord(random, topic, List.of(partition), now, 300)));
          List<Header> headers = List.of(new RecordHeader("big", (byte[]) null), new RecordHeader("size", String.valueOf(bigBytes).getBytes(StandardCharsets.UTF_8)));
          sends.add(producer.send(new ProducerRecord<>(topic, partition, now, "big".getBytes(StandardCharsets.UTF_8), randomBytes(random, bigBytes), headers)));
          sends.add(producer.send(someRecord(random, topic, List.of(partition), now, 300)));
          big++;
          written += 3;
        }
        for (Future<RecordMetadata> send : sends) send.get();
      }
    }
    summary.put("committed", written);
    summary.put("aborted", aborted);
    summary.put("big", big);
  }

  private static void produceSteady(String bootstrap, String topic, Random random, int count, int rate, Map<String, Object> summary) throws Exception {
    Properties props = producerProps(bootstrap, "none", true, null);
    long started = System.nanoTime();
    int written = 0;
    Map<Integer, Integer> perPartition = new HashMap<>();
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
      List<Future<RecordMetadata>> sends = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        // Paced: record i goes out at i/rate seconds.
        long dueNanos = started + (long) (i * 1e9 / rate);
        long waitNanos = dueNanos - System.nanoTime();
        if (waitNanos > 0) Thread.sleep(waitNanos / 1_000_000, (int) (waitNanos % 1_000_000));
        List<Integer> partitions = partitionsOf(producer, topic);
        int partition = partitions.get(i % partitions.size());
        // Plain records (the shapes profile covers the rest), so a loss here is the growth's doing.
        List<Header> headers = List.of(new RecordHeader("seq", String.valueOf(i).getBytes(StandardCharsets.UTF_8)));
        sends.add(producer.send(new ProducerRecord<>(topic, partition, null, ("k" + i).getBytes(StandardCharsets.UTF_8), randomBytes(random, 50 + random.nextInt(150)), headers)));
        perPartition.merge(partition, 1, Integer::sum);
        if (sends.size() >= 1000) {
          for (Future<RecordMetadata> send : sends) send.get();
          sends.clear();
        }
        written++;
        // A progress line a second, so the caller can act while records flow.
        if (i % rate == 0) System.err.println("progress " + i);
      }
      for (Future<RecordMetadata> send : sends) send.get();
    }
    summary.put("committed", written);
    summary.put("perPartition", perPartition);
    summary.put("seconds", (System.nanoTime() - started) / 1e9);
  }

  private static void produceCompact(String bootstrap, String topic, Random random, int keys, long deadlineMs, Map<String, Object> summary) throws Exception {
    long deadline = System.currentTimeMillis() + deadlineMs;
    int written = 0;
    int rounds = 0;
    int present = 0;
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap, "none", true, null))) {
      List<Integer> partitions = partitionsOf(producer, topic);
      while (System.currentTimeMillis() < deadline) {
        // Every key in the first round, then a random third of them per round, in a new order, so
        // the survivors of compaction are scattered (gaps inside the log); some are tombstones.
        List<Integer> order = new ArrayList<>();
        for (int k = 0; k < keys; k++) if (rounds == 0 || random.nextInt(3) == 0) order.add(k);
        java.util.Collections.shuffle(order, random);
        for (int k : order) {
          byte[] value = random.nextInt(8) == 0 ? null : randomBytes(random, 1 + random.nextInt(200));
          List<Header> headers = List.of(new RecordHeader("round", String.valueOf(rounds).getBytes(StandardCharsets.UTF_8)));
          producer.send(new ProducerRecord<>(topic, partitions.get(k % partitions.size()), null, ("key-" + k).getBytes(StandardCharsets.UTF_8), value, headers));
          written++;
        }
        producer.flush();
        rounds++;
        // segment.ms is short: the next round's first record rolls the segment, and the
        // cleaner (every 15 s) compacts the closed ones.
        Thread.sleep(300);
        present = countRecords(bootstrap, topic);
        if (present < written) break;
      }
    }
    summary.put("committed", written);
    summary.put("rounds", rounds);
    summary.put("present", present);
  }

  private static void produceRefused(String bootstrap, String topic, int neighbours, int bigBytes, Map<String, Object> summary) throws Exception {
    Properties props = producerProps(bootstrap, "none", true, null);
    // One batch: everything is sent before the linger ends, and fits batch.size.
    props.put(ProducerConfig.LINGER_MS_CONFIG, "500");
    props.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(bigBytes + 64 * 1024));
    long now = System.currentTimeMillis();
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
      List<Future<RecordMetadata>> sends = new ArrayList<>();
      int offset = 0;
      for (int i = 0; i < neighbours; i++, offset++) sends.add(producer.send(new ProducerRecord<>(topic, 0, now + offset, ("k" + offset).getBytes(StandardCharsets.UTF_8), ("small-" + offset).getBytes(StandardCharsets.UTF_8))));
      sends.add(producer.send(new ProducerRecord<>(topic, 0, now + offset, ("k" + offset).getBytes(StandardCharsets.UTF_8), new byte[bigBytes])));
      offset++;
      for (int i = 0; i < neighbours; i++, offset++) sends.add(producer.send(new ProducerRecord<>(topic, 0, now + offset, ("k" + offset).getBytes(StandardCharsets.UTF_8), ("small-" + offset).getBytes(StandardCharsets.UTF_8))));
      List<Long> offsets = new ArrayList<>();
      for (Future<RecordMetadata> send : sends) offsets.add(send.get().offset());
      summary.put("offsets", offsets);
      summary.put("committed", sends.size());
    }
  }

  // ------------------------------------------------------------------------------------------
  // dump
  // ------------------------------------------------------------------------------------------

  private static KafkaConsumer<byte[], byte[]> consumer(String bootstrap, String isolation) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(8 * 1024 * 1024));
    p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(16 * 1024 * 1024));
    return new KafkaConsumer<>(p);
  }

  private interface RecordSink {
    void accept(ConsumerRecord<byte[], byte[]> record) throws Exception;
  }

  /** Reads every partition from its start to the end offsets taken now (the LSO for read_committed). */
  private static void readAll(String bootstrap, String topic, String isolation, RecordSink sink) throws Exception {
    try (KafkaConsumer<byte[], byte[]> consumer = consumer(bootstrap, isolation)) {
      List<TopicPartition> partitions = consumer.partitionsFor(topic, Duration.ofSeconds(30)).stream().map(info -> new TopicPartition(topic, info.partition())).collect(Collectors.toList());
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
      long deadline = System.currentTimeMillis() + 90_000;
      for (;;) {
        boolean done = true;
        for (TopicPartition tp : partitions) if (consumer.position(tp) < ends.get(tp)) done = false;
        if (done) return;
        if (System.currentTimeMillis() > deadline) throw new IllegalStateException("reading " + topic + " did not reach the end offsets " + ends + " in 90 s");
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
          // Records past the end taken at the start are left for the next dump.
          if (record.offset() < ends.get(new TopicPartition(topic, record.partition()))) sink.accept(record);
        }
      }
    }
  }

  private static int countRecords(String bootstrap, String topic) throws Exception {
    int[] count = {0};
    readAll(bootstrap, topic, "read_committed", record -> count[0]++);
    return count[0];
  }

  /** Hex SHA-256 over the length-prefixed key, value and header keys and values (null: length -1). */
  static String recordId(ConsumerRecord<byte[], byte[]> record, String ignoredHeader) throws Exception {
    java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
    java.util.function.Consumer<byte[]> add = bytes -> {
      int length = bytes == null ? -1 : bytes.length;
      sha.update(new byte[] {(byte) (length >>> 24), (byte) (length >>> 16), (byte) (length >>> 8), (byte) length});
      if (bytes != null) sha.update(bytes);
    };
    add.accept(record.key());
    add.accept(record.value());
    for (Header header : record.headers()) {
      if (header.key().equals(ignoredHeader)) continue;
      add.accept(header.key().getBytes(StandardCharsets.UTF_8));
      add.accept(header.value());
    }
    StringBuilder hex = new StringBuilder();
    for (byte b : sha.digest()) hex.append(String.format("%02x", b));
    return hex.toString();
  }

  private static void consumeGroup(Map<String, String> args) throws Exception {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, need(args, "bootstrap"));
    p.put(ConsumerConfig.GROUP_ID_CONFIG, need(args, "group"));
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
    // A killed application leaves its group after 6 s (the broker's minimum), not 45.
    p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
    p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
    long commitMs = Long.parseLong(args.getOrDefault("commit-ms", "1000"));
    double rate = Double.parseDouble(args.getOrDefault("rate", "1000000"));
    long idleExitMs = Long.parseLong(args.getOrDefault("idle-exit-ms", "0"));
    // A header left out of the id (a mirror's provenance header, to match copies with originals).
    String ignoredHeader = args.get("ignore-header");
    java.io.PrintStream out = new java.io.PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8);
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
      consumer.subscribe(List.of(need(args, "topic")));
      long started = 0;
      long read = 0;
      long lastCommit = System.currentTimeMillis();
      long lastRecord = System.currentTimeMillis();
      // What the application has handled (printed): only that is ever committed.
      Map<TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata> handled = new HashMap<>();
      boolean assigned = false;
      for (;;) {
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(100))) {
          // Paced: record n is read no sooner than n/rate seconds after the first.
          if (read == 0) started = System.nanoTime();
          long waitNanos = started + (long) (read * 1e9 / rate) - System.nanoTime();
          if (waitNanos > 0) Thread.sleep(waitNanos / 1_000_000, (int) (waitNanos % 1_000_000));
          out.println("r " + record.partition() + " " + record.offset() + " " + recordId(record, ignoredHeader));
          out.flush();
          handled.put(new TopicPartition(record.topic(), record.partition()), new org.apache.kafka.clients.consumer.OffsetAndMetadata(record.offset() + 1));
          read++;
          lastRecord = System.currentTimeMillis();
          if (lastRecord - lastCommit >= commitMs) {
            consumer.commitSync(handled);
            out.println("c");
            out.flush();
            lastCommit = System.currentTimeMillis();
          }
        }
        if (System.currentTimeMillis() - lastCommit >= commitMs && !handled.isEmpty()) {
          consumer.commitSync(handled);
          out.println("c");
          out.flush();
          lastCommit = System.currentTimeMillis();
        }
        // Idle counts from the first assignment on (joining the group takes a while).
        if (!assigned && !consumer.assignment().isEmpty()) {
          assigned = true;
          if (read == 0) lastRecord = System.currentTimeMillis();
        }
        if (idleExitMs > 0 && assigned && System.currentTimeMillis() - lastRecord >= idleExitMs) return;
      }
    }
  }

  private static void epochs(Map<String, String> args) throws Exception {
    Properties props = new Properties();
    props.put("bootstrap.servers", need(args, "bootstrap"));
    List<String> ids = List.of(need(args, "ids").split(","));
    StringBuilder out = new StringBuilder("{");
    try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(props)) {
      var described = admin.describeTransactions(ids);
      for (String id : ids) {
        try {
          int epoch = described.description(id).get().producerEpoch();
          if (out.length() > 1) out.append(',');
          out.append('"').append(id.replace("\\", "\\\\").replace("\"", "\\\"")).append("\":").append(epoch);
        } catch (java.util.concurrent.ExecutionException e) {
          if (!(e.getCause() instanceof org.apache.kafka.common.errors.TransactionalIdNotFoundException)) throw e;
        }
      }
    }
    System.out.println(out.append('}'));
  }

  private static void dump(Map<String, String> args) throws Exception {
    String bootstrap = need(args, "bootstrap");
    String topic = need(args, "topic");
    String isolation = args.getOrDefault("isolation", "read_committed");
    Base64.Encoder b64 = Base64.getEncoder();
    try (Writer out = new BufferedWriter(new OutputStreamWriter(new FileOutputStream(need(args, "out")), StandardCharsets.UTF_8), 1 << 20)) {
      readAll(bootstrap, topic, isolation, record -> {
        StringBuilder line = new StringBuilder(256);
        line.append("{\"p\":").append(record.partition())
            .append(",\"o\":").append(record.offset())
            .append(",\"tt\":\"").append(record.timestampType().name)
            .append("\",\"ts\":").append(record.timestamp())
            .append(",\"k\":").append(record.key() == null ? "null" : "\"" + b64.encodeToString(record.key()) + "\"")
            .append(",\"v\":").append(record.value() == null ? "null" : "\"" + b64.encodeToString(record.value()) + "\"")
            .append(",\"h\":[");
        boolean first = true;
        for (Header header : record.headers()) {
          if (!first) line.append(',');
          first = false;
          // Header keys are strings: sent as base64 of their UTF-8 too, so no JSON escaping is needed.
          line.append("[\"").append(b64.encodeToString(header.key().getBytes(StandardCharsets.UTF_8))).append("\",")
              .append(header.value() == null ? "null" : "\"" + b64.encodeToString(header.value()) + "\"").append(']');
        }
        line.append("]}\n");
        out.write(line.toString());
      });
    }
  }

  private static String json(Map<String, Object> map) {
    return map.entrySet().stream()
        .map(e -> "\"" + e.getKey() + "\":" + (e.getValue() instanceof String s ? "\"" + s + "\"" : e.getValue() instanceof Map<?, ?> m ? json(m.entrySet().stream().collect(Collectors.toMap(x -> String.valueOf(x.getKey()), Map.Entry::getValue))) : String.valueOf(e.getValue())))
        .collect(Collectors.joining(",", "{", "}"));
  }
}
