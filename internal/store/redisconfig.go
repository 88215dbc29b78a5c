package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig says how to reach Redis. It takes one of three topologies:
//
//   - a standalone server: URL ("redis://" or "rediss://"), or a single address in Addrs;
//   - Sentinel: SentinelMaster, with the Sentinels' addresses in Addrs;
//   - Redis Cluster: several addresses in Addrs (any nodes of the cluster), no SentinelMaster.
//
// Validate checks it, NewClient builds the client NewRedis takes. docs/redis.md shows each
// topology. Its String method leaves the passwords out.
type RedisConfig struct {
	// URL is a standalone server as "redis://[[user]:password@]host[:port][/db][?option=value...]",
	// or "rediss://..." for TLS. The options are those of go-redis's ParseURL (dial_timeout,
	// read_timeout, pool_size, ...). Not with Addrs. (AUTHGATE_REDIS_URL)
	URL string
	// Addrs are host:port addresses: one standalone server, the Sentinels with SentinelMaster, or
	// several nodes of a Redis Cluster. Not with URL. (AUTHGATE_REDIS_ADDRS, comma-separated)
	Addrs []string
	// SentinelMaster is the name under which the Sentinels in Addrs know the master.
	// (AUTHGATE_REDIS_SENTINEL_MASTER)
	SentinelMaster string
	// Cluster treats Addrs as Redis Cluster nodes even when there is one: a managed Cluster's
	// configuration endpoint, say. Several Addrs without SentinelMaster are a Cluster anyway.
	// (AUTHGATE_REDIS_CLUSTER: true or false)
	Cluster bool
	// Username is the ACL user (Redis 6 or later); empty for the default user. It overrides a user
	// in URL. (AUTHGATE_REDIS_USERNAME)
	Username string
	// Password is the password of the user, or of the default user (requirepass). It overrides a
	// password in URL. (AUTHGATE_REDIS_PASSWORD)
	Password string
	// SentinelPassword is the Sentinels' own password, when they require one.
	// (AUTHGATE_REDIS_SENTINEL_PASSWORD)
	SentinelPassword string
	// DB is the database number of a standalone server or Sentinel master; Redis Cluster has only
	// database 0. It overrides the database in URL.
	DB int
	// TLS connects with TLS (a "rediss://" URL implies it). Servers are verified against the
	// system's roots, or CAFile. (AUTHGATE_REDIS_TLS: true or false)
	TLS bool
	// CAFile is a PEM file of the certificate authorities that sign the servers' certificates.
	// (AUTHGATE_REDIS_CA_FILE)
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key, for servers that require one
	// (tls-auth-clients yes). Both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify skips the verification of the servers' certificates: for tests only.
	InsecureSkipVerify bool
	// Prefix starts every key and the revocation channel; see RedisOptions.Prefix. Empty means
	// "authgate".
	Prefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound connecting and each command's network reads
	// and writes; zero means 2s, 1s and 1s. A context deadline bounds a command too.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the number of connections per server; zero means 10 per CPU.
	PoolSize int

	// envErr is an environment variable that RedisConfigFromEnv could not read, for Validate.
	envErr error
}

// Defaults of RedisConfig's timeouts. A check waits for Redis at most about this long before its
// policy's onStoreUnavailable applies.
const (
	defaultRedisDialTimeout = 2 * time.Second
	defaultRedisIOTimeout   = time.Second
)

// RedisConfigFromEnv reads a RedisConfig from the environment variables AUTHGATE_REDIS_URL,
// AUTHGATE_REDIS_ADDRS (comma-separated), AUTHGATE_REDIS_SENTINEL_MASTER, AUTHGATE_REDIS_CLUSTER (a
// boolean), AUTHGATE_REDIS_USERNAME, AUTHGATE_REDIS_PASSWORD, AUTHGATE_REDIS_SENTINEL_PASSWORD,
// AUTHGATE_REDIS_TLS (a boolean) and
// AUTHGATE_REDIS_CA_FILE, through getenv (os.Getenv). A value it cannot read is reported by
// Validate.
func RedisConfigFromEnv(getenv func(string) string) RedisConfig {
	c := RedisConfig{
		URL:              strings.TrimSpace(getenv("AUTHGATE_REDIS_URL")),
		SentinelMaster:   strings.TrimSpace(getenv("AUTHGATE_REDIS_SENTINEL_MASTER")),
		Username:         getenv("AUTHGATE_REDIS_USERNAME"),
		Password:         getenv("AUTHGATE_REDIS_PASSWORD"),
		SentinelPassword: getenv("AUTHGATE_REDIS_SENTINEL_PASSWORD"),
		CAFile:           strings.TrimSpace(getenv("AUTHGATE_REDIS_CA_FILE")),
	}
	for _, a := range strings.Split(getenv("AUTHGATE_REDIS_ADDRS"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Addrs = append(c.Addrs, a)
		}
	}
	if v := strings.TrimSpace(getenv("AUTHGATE_REDIS_CLUSTER")); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			c.envErr = fmt.Errorf("redis: AUTHGATE_REDIS_CLUSTER=%q is not a boolean (true or false)", v)
		}
		c.Cluster = on
	}
	if v := strings.TrimSpace(getenv("AUTHGATE_REDIS_TLS")); v != "" {
		tlsOn, err := strconv.ParseBool(v)
		if err != nil {
			c.envErr = fmt.Errorf("redis: AUTHGATE_REDIS_TLS=%q is not a boolean (true or false)", v)
		}
		c.TLS = tlsOn
	}
	return c
}

// Validate reports the first problem of c, naming the option: no server or two ways of naming
// one, a malformed URL or address, Sentinel without Sentinels, TLS files that cannot be read, and
// so on. It reads the TLS files.
func (c RedisConfig) Validate() error {
	_, err := c.options()
	return err
}

// NewClient returns a client for c's topology: a standalone client (*redis.Client) for URL or a
// single address, a Sentinel-backed failover client for SentinelMaster, a cluster client
// (*redis.ClusterClient) for several addresses. It does not connect: the first command does.
// Commands respect their context's deadline.
func (c RedisConfig) NewClient() (redis.UniversalClient, error) {
	o, err := c.options()
	if err != nil {
		return nil, err
	}
	if o.url != nil {
		return redis.NewClient(o.url), nil
	}
	return redis.NewUniversalClient(o.universal), nil
}

// redisOptions are the client options of one of the two forms.
type redisOptions struct {
	url       *redis.Options
	universal *redis.UniversalOptions
}

func (c RedisConfig) options() (redisOptions, error) {
	if c.envErr != nil {
		return redisOptions{}, c.envErr
	}
	switch {
	case c.URL != "" && len(c.Addrs) > 0:
		return redisOptions{}, errors.New("redis: set URL or Addrs, not both")
	case c.URL == "" && len(c.Addrs) == 0:
		return redisOptions{}, errors.New("redis: no server: set URL (a standalone server) or Addrs")
	case c.URL != "" && c.SentinelMaster != "":
		return redisOptions{}, errors.New("redis: SentinelMaster needs the Sentinels' addresses in Addrs, not a URL")
	case c.Cluster && c.URL != "":
		return redisOptions{}, errors.New("redis: Cluster needs the nodes (or a configuration endpoint) in Addrs, not a URL")
	case c.Cluster && c.SentinelMaster != "":
		return redisOptions{}, errors.New("redis: Cluster and SentinelMaster exclude each other")
	case c.Cluster && c.DB != 0:
		return redisOptions{}, fmt.Errorf("redis: DB %d: Redis Cluster has database 0 only", c.DB)
	case c.SentinelPassword != "" && c.SentinelMaster == "":
		return redisOptions{}, errors.New("redis: SentinelPassword is set but SentinelMaster is not")
	case c.DB < 0:
		return redisOptions{}, fmt.Errorf("redis: DB %d is negative", c.DB)
	case c.DB != 0 && len(c.Addrs) > 1 && c.SentinelMaster == "":
		return redisOptions{}, fmt.Errorf("redis: DB %d: Redis Cluster (several Addrs without SentinelMaster) has database 0 only", c.DB)
	case c.PoolSize < 0:
		return redisOptions{}, fmt.Errorf("redis: PoolSize %d is negative", c.PoolSize)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return redisOptions{}, errors.New("redis: CertFile and KeyFile go together: set both or neither")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout}} {
		if d.d < 0 {
			return redisOptions{}, fmt.Errorf("redis: %s %v is negative (0 means the default)", d.name, d.d)
		}
	}
	if c.Prefix != "" {
		if err := validRedisPrefix(c.Prefix); err != nil {
			return redisOptions{}, fmt.Errorf("redis: Prefix: %w", err)
		}
	}
	for i, a := range c.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return redisOptions{}, fmt.Errorf("redis: Addrs[%d] %q is not host:port", i, a)
		}
	}
	useTLS := c.TLS
	var parsed *redis.Options
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil {
			// url.Error repeats the URL, and with it a password: leave it out.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return redisOptions{}, fmt.Errorf("redis: URL: %w", err)
		}
		switch u.Scheme {
		case "redis":
			if c.TLS {
				return redisOptions{}, errors.New(`redis: TLS is set but URL starts with "redis://": use "rediss://"`)
			}
		case "rediss":
			useTLS = true
		default:
			return redisOptions{}, fmt.Errorf(`redis: URL: scheme %q: want "redis://" or "rediss://"`, u.Scheme)
		}
		if parsed, err = redis.ParseURL(c.URL); err != nil {
			return redisOptions{}, fmt.Errorf("redis: URL: %w", err)
		}
	}
	if !useTLS && (c.CAFile != "" || c.CertFile != "" || c.InsecureSkipVerify) {
		return redisOptions{}, errors.New(`redis: CAFile, CertFile and InsecureSkipVerify need TLS (TLS, or a "rediss://" URL)`)
	}
	var tlsConfig *tls.Config
	if useTLS {
		var err error
		if tlsConfig, err = c.tlsConfig(parsed); err != nil {
			return redisOptions{}, err
		}
	}
	dial, read, write := c.DialTimeout, c.ReadTimeout, c.WriteTimeout
	if parsed != nil {
		// Timeouts in the URL's options count unless the fields are set.
		dial, read, write = orDefault(dial, parsed.DialTimeout), orDefault(read, parsed.ReadTimeout), orDefault(write, parsed.WriteTimeout)
	}
	dial, read, write = orDefault(dial, defaultRedisDialTimeout), orDefault(read, defaultRedisIOTimeout), orDefault(write, defaultRedisIOTimeout)

	if parsed != nil {
		o := parsed
		if c.Username != "" {
			o.Username = c.Username
		}
		if c.Password != "" {
			o.Password = c.Password
		}
		if c.DB != 0 {
			o.DB = c.DB
		}
		if c.PoolSize != 0 {
			o.PoolSize = c.PoolSize
		}
		o.TLSConfig = tlsConfig
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = dial, read, write
		o.DialerRetries = 1 // the command's retries (MaxRetries) dial again
		o.ContextTimeoutEnabled = true
		return redisOptions{url: o}, nil
	}
	return redisOptions{universal: &redis.UniversalOptions{
		Addrs:                 c.Addrs,
		MasterName:            c.SentinelMaster,
		IsClusterMode:         c.Cluster,
		Username:              c.Username,
		Password:              c.Password,
		SentinelPassword:      c.SentinelPassword,
		DB:                    c.DB,
		TLSConfig:             tlsConfig,
		DialTimeout:           dial,
		ReadTimeout:           read,
		WriteTimeout:          write,
		DialerRetries:         1,
		PoolSize:              c.PoolSize,
		ContextTimeoutEnabled: true,
	}}, nil
}

// orDefault returns a unless it is zero, else b.
func orDefault(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// tlsConfig builds the TLS configuration: parsed's (from a rediss:// URL, with its server name and
// skip_verify) or a new one, with CAFile's roots and the client certificate. With Addrs the server
// name is each address's host, as crypto/tls infers it when dialing.
func (c RedisConfig) tlsConfig(parsed *redis.Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if parsed != nil && parsed.TLSConfig != nil {
		cfg = parsed.TLSConfig.Clone()
	}
	if c.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis: CAFile %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis: CertFile and KeyFile: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// String describes c without its passwords.
func (c RedisConfig) String() string {
	secret := func(v string) string {
		if v == "" {
			return `""`
		}
		return "REDACTED"
	}
	u := c.URL
	if parsed, err := url.Parse(c.URL); err != nil {
		u = "(unparsable)"
	} else if _, ok := parsed.User.Password(); ok {
		parsed.User = url.UserPassword(parsed.User.Username(), "REDACTED")
		u = parsed.String()
	}
	return fmt.Sprintf("{URL:%q Addrs:%q SentinelMaster:%q Cluster:%t Username:%q Password:%s SentinelPassword:%s DB:%d "+
		"TLS:%t CAFile:%q CertFile:%q KeyFile:%q InsecureSkipVerify:%t Prefix:%q DialTimeout:%v ReadTimeout:%v "+
		"WriteTimeout:%v PoolSize:%d}",
		u, c.Addrs, c.SentinelMaster, c.Cluster, c.Username, secret(c.Password), secret(c.SentinelPassword), c.DB,
		c.TLS, c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify, c.Prefix, c.DialTimeout, c.ReadTimeout,
		c.WriteTimeout, c.PoolSize)
}
