package auth

import (
	"fmt"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// identity reads the configured claims of a verified token. A user token
// needs a user and a tenant; a publisher token a tenant; a platform token
// neither. Any identity claim that is present must be a valid value (see
// checkValue), even where it is optional.
func (v *Verifier) identity(c jwt.MapClaims) (Identity, error) {
	var id Identity
	var err error
	var hasUser, hasTenant bool
	if id.User, hasUser, err = stringClaim(c, v.cfg.UserClaim); err != nil {
		return Identity{}, err
	}
	if id.Tenant, hasTenant, err = stringClaim(c, v.cfg.TenantClaim); err != nil {
		return Identity{}, err
	}
	if id.Store, _, err = stringClaim(c, v.cfg.StoreClaim); err != nil {
		return Identity{}, err
	}
	roles, err := rolesClaim(c, v.cfg.RolesClaim)
	if err != nil {
		return Identity{}, err
	}
	id.Platform = slices.Contains(roles, v.cfg.PlatformRole)
	id.Publisher = id.Platform || slices.Contains(roles, v.cfg.PublisherRole)
	if !hasTenant && !id.Platform {
		return Identity{}, reject(fmt.Sprintf("claim %q missing", v.cfg.TenantClaim), nil)
	}
	if !hasUser && !id.Publisher {
		return Identity{}, reject(fmt.Sprintf("claim %q missing", v.cfg.UserClaim), nil)
	}
	// exp is required and was type-checked by the parser; the parser
	// accepts it up to the leeway past, so that is when it expires.
	if exp, err := c.GetExpirationTime(); err == nil && exp != nil {
		id.ExpiresAt = exp.Time.Add(v.cfg.Leeway)
	}
	return id, nil
}

// stringClaim returns the string claim name; present is false if the token
// does not carry it.
func stringClaim(c jwt.MapClaims, name string) (value string, present bool, err error) {
	raw, ok := c[name]
	if !ok {
		return "", false, nil
	}
	s, ok := raw.(string)
	if !ok {
		return "", false, reject(fmt.Sprintf("claim %q is not a string", name), nil)
	}
	if why := checkValue(s); why != "" {
		return "", false, reject(fmt.Sprintf("claim %q %s", name, why), nil)
	}
	return s, true, nil
}

// rolesClaim accepts a single string or an array of strings.
func rolesClaim(c jwt.MapClaims, name string) ([]string, error) {
	var roles []string
	switch r := c[name].(type) {
	case nil:
		return nil, nil
	case string:
		roles = []string{r}
	case []any:
		for _, e := range r {
			s, ok := e.(string)
			if !ok {
				return nil, reject(fmt.Sprintf("claim %q holds a non-string", name), nil)
			}
			roles = append(roles, s)
		}
	default:
		return nil, reject(fmt.Sprintf("claim %q is neither a string nor an array", name), nil)
	}
	for _, s := range roles {
		if why := checkValue(s); why != "" {
			return nil, reject(fmt.Sprintf("claim %q: a role %s", name, why), nil)
		}
	}
	return roles, nil
}
