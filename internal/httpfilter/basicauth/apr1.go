package basicauth

import (
	"crypto/md5"
	"errors"
	"strings"
)

// Apache's MD5-crypt ("$apr1$salt$hash"), the default of htpasswd and what most ingress-nginx
// auth secrets hold. Envoy does not read it; Nuncio does, so that those secrets keep working.
// It is weak by today's standards (MD5, 1000 rounds): bcrypt is the better choice for new users.

const apr1Magic = "$apr1$"

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// parseAPR1 splits an $apr1$ entry into its salt and checks its shape.
func parseAPR1(hash string) (salt string, err error) {
	rest := strings.TrimPrefix(hash, apr1Magic)
	salt, sum, ok := strings.Cut(rest, "$")
	if !ok || salt == "" || len(salt) > 8 || len(sum) != 22 {
		return "", errors.New("malformed $apr1$ hash")
	}
	for _, s := range []string{salt, sum} {
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(itoa64, s[i]) < 0 {
				return "", errors.New("malformed $apr1$ hash")
			}
		}
	}
	return salt, nil
}

// apr1 computes the $apr1$ hash of password with salt, appended to dst.
func apr1(dst, password []byte, salt string) []byte {
	alt := md5.New()
	alt.Write(password)
	alt.Write([]byte(salt))
	alt.Write(password)
	var final [md5.Size]byte
	alt.Sum(final[:0])

	ctx := md5.New()
	ctx.Write(password)
	ctx.Write([]byte(apr1Magic))
	ctx.Write([]byte(salt))
	for n := len(password); n > 0; n -= md5.Size {
		ctx.Write(final[:min(n, md5.Size)])
	}
	var zero = [1]byte{0}
	for i := len(password); i != 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write(zero[:])
		} else {
			ctx.Write(password[:1])
		}
	}
	ctx.Sum(final[:0])

	for i := 0; i < 1000; i++ {
		r := md5.New()
		if i&1 != 0 {
			r.Write(password)
		} else {
			r.Write(final[:])
		}
		if i%3 != 0 {
			r.Write([]byte(salt))
		}
		if i%7 != 0 {
			r.Write(password)
		}
		if i&1 != 0 {
			r.Write(final[:])
		} else {
			r.Write(password)
		}
		r.Sum(final[:0])
	}

	dst = append(dst, apr1Magic...)
	dst = append(dst, salt...)
	dst = append(dst, '$')
	to64 := func(v uint32, n int) {
		for ; n > 0; n-- {
			dst = append(dst, itoa64[v&0x3f])
			v >>= 6
		}
	}
	f := final
	to64(uint32(f[0])<<16|uint32(f[6])<<8|uint32(f[12]), 4)
	to64(uint32(f[1])<<16|uint32(f[7])<<8|uint32(f[13]), 4)
	to64(uint32(f[2])<<16|uint32(f[8])<<8|uint32(f[14]), 4)
	to64(uint32(f[3])<<16|uint32(f[9])<<8|uint32(f[15]), 4)
	to64(uint32(f[4])<<16|uint32(f[10])<<8|uint32(f[5]), 4)
	to64(uint32(f[11]), 2)
	return dst
}
