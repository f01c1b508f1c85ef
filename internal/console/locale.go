package console

import (
	"fmt"

	"golang.org/x/text/language"
)

// The console's words, one catalogue per locale;
// TestCataloguesHaveTheSameKeys holds them to the same keys.

type locale struct {
	tag      string // the html lang attribute
	dir      string // ltr or rtl
	messages map[string]string
}

var locales = map[string]locale{
	"en": {tag: "en", dir: "ltr", messages: english},
	"ar": {tag: "ar", dir: "rtl", messages: arabic},
}

// localeMatcher picks from a browser's Accept-Language; English first, so
// it is the fallback.
var localeMatcher = language.NewMatcher([]language.Tag{language.English, language.Arabic})

// pickLocale is ?lang= when it names a locale, else the browser's.
func pickLocale(query, acceptLanguage string) locale {
	if l, ok := locales[query]; ok {
		return l
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return locales["en"]
	}
	_, i, _ := localeMatcher.Match(tags...)
	if i == 1 {
		return locales["ar"]
	}
	return locales["en"]
}

// text is the locale's words for key, with args filled in as by
// fmt.Sprintf; a key missing shows itself, which the catalogue test
// prevents.
func (l locale) text(key string, args ...any) string {
	m, ok := l.messages[key]
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}

var english = map[string]string{
	"title":              "Outbound console",
	"skip":               "Skip to the content",
	"nav.label":          "Console",
	"nav.overview":       "Overview",
	"nav.tenants":        "Tenants",
	"nav.signout":        "Sign out",
	"nav.language":       "العربية",
	"nav.language.code":  "ar",
	"signin.title":       "Sign in",
	"signin.token":       "Admin API token",
	"signin.token.hint":  "An admin key from OUTBOUND_API_KEYS. It is not kept: the console keeps a session for 12 hours.",
	"signin.submit":      "Sign in",
	"signin.refused":     "This token is not an admin API key.",
	"error.summary":      "There is a problem",
	"refused.title":      "This form could not be accepted",
	"refused.body":       "The page it came from was too old or from elsewhere. Open the page again and retry.",
	"refused.back":       "Open the console again",
	"notfound.title":     "Not found",
	"notfound.body":      "There is nothing here, or it is not yours to see.",
	"unavailable.title":  "The console cannot answer now",
	"unavailable.body":   "The service's storage did not answer. Try again in a moment.",
	"overview.title":     "Overview",
	"overview.depth":     "Queue depth by partition",
	"overview.partition": "Partition",
	"overview.waiting":   "Waiting",
	"overview.oldest":    "Oldest (seconds)",
	"overview.hour":      "The last hour, by minute",
	"overview.chart":     "Messages sent, deferred and failed in each minute of the last hour",
	"overview.totals":    "Totals of the last hour",
	"overview.failing":   "Tenants whose account is failing",
	"overview.nofailing": "No tenant's account is failing.",
	"overview.scanned":   "Looked at the first %d tenants.",
	"count.sent":         "Sent",
	"count.deferred":     "Deferred",
	"count.failed":       "Failed",
	"count.suppressed":   "Suppressed",
	"tenant.id":          "Tenant",
	"tenant.route":       "Route",
	"tenant.sending":     "Sending",
	"tenant.error":       "Last error",
	"tenant.hint":        "What to do",
	"tenant.circuit":     "Circuit open until %s",
	"tenants.title":      "Tenants",
	"tenants.search":     "Tenant id starts with",
	"tenants.submit":     "Search",
	"tenants.none":       "No tenant matches.",
	"tenants.more":       "Next page",
	"profile.title":      "SMTP account",
	"profile.none":       "No account: mail goes through the default relay.",
	"profile.provider":   "Provider",
	"profile.host":       "Server",
	"profile.email":      "Address",
	"profile.enabled":    "Enabled",
	"yes":                "Yes",
	"no":                 "No",
	"status.title":       "Sending",
	"status.reason":      "Reason (optional)",
	"status.pause":       "Pause sending",
	"status.resume":      "Resume sending",
	"status.paused":      "Paused",
	"status.active":      "Active",
	"status.operator":    "Only the operator's key may pause or resume a tenant.",
	"recent.title":       "Recent messages",
	"recent.none":        "No messages.",
	"msg.id":             "Message",
	"msg.status":         "Status",
	"msg.created":        "Accepted",
	"msg.sendat":         "Send at",
	"msg.error":          "Error",
	"msg.title":          "Message",
	"msg.recipients":     "Recipients",
	"msg.email":          "Address",
	"msg.state":          "State",
	"msg.reply":          "Server's reply",
	"msg.norecipients":   "No attempt yet.",
	"msg.attempts":       "Attempts",
	"msg.at":             "When",
	"msg.code":           "Code",
	"msg.noattempts":     "No attempt yet.",
	"msg.cancel":         "Cancel this message",
	"msg.cancelled":      "The message is cancelled.",
	"msg.notcancellable": "This message is being sent or is done: it cannot be cancelled.",
	"chart.minutesago":   "%d min ago",
	"chart.now":          "now",
	"nav.webhooks":       "Webhooks",
	"supp.title":         "Suppressed addresses",
	"supp.source":        "Added by",
	"supp.none":          "No address is suppressed.",
	"supp.more":          "The first 50 are shown: GET /v1/tenants/{tenant}/suppressions lists them all.",
	"supp.remove":        "Remove",
	"rate.title":         "Rate usage",
	"rate.window":        "Window",
	"rate.used":          "Recipients used / allowed",
	"rate.reset":         "Full again in",
	"rate.minute":        "per minute",
	"rate.day":           "per day",
	"supp.bounced":       "%s was added by a hard bounce: only the operator can remove it.",
	"msg.events":         "Webhook events",
	"msg.noevents":       "No webhook event is logged about this message.",
	"msg.hook":           "Webhook",
	"msg.delivered":      "Delivered",
	"verify.submit":      "Test the connection",
	"verify.ok":          "The connection works: %s, AUTH %s, %d ms. No mail was sent.",
	"verify.failed":      "The test failed: %s",
	"hooks.title":        "Webhooks",
	"hooks.none":         "No webhooks.",
	"hooks.name":         "Name",
	"hooks.url":          "URL",
	"hooks.events":       "Events",
	"hooks.log":          "Deliveries of",
	"hooks.event":        "Event",
	"hooks.attempt":      "Attempt",
	"hooks.answer":       "Answer",
	"hooks.retry":        "Send again",
	"hooks.retried":      "The event is queued to be sent again.",
	"hooks.delivered":    "Delivered",
	"hooks.notdelivered": "Not delivered",
	"hooks.gaveup":       "given up",
	"hooks.nodeliveries": "Nothing sent yet.",
}

var arabic = map[string]string{
	"title":              "لوحة تحكم Outbound",
	"skip":               "انتقل إلى المحتوى",
	"nav.label":          "لوحة التحكم",
	"nav.overview":       "نظرة عامة",
	"nav.tenants":        "المستأجرون",
	"nav.signout":        "تسجيل الخروج",
	"nav.language":       "English",
	"nav.language.code":  "en",
	"signin.title":       "تسجيل الدخول",
	"signin.token":       "رمز API للمسؤول",
	"signin.token.hint":  "مفتاح مسؤول من OUTBOUND_API_KEYS. لا يُحفظ: تحتفظ لوحة التحكم بجلسة مدتها 12 ساعة.",
	"signin.submit":      "تسجيل الدخول",
	"signin.refused":     "هذا الرمز ليس مفتاح API لمسؤول.",
	"error.summary":      "هناك مشكلة",
	"refused.title":      "تعذّر قبول هذا النموذج",
	"refused.body":       "الصفحة التي جاء منها قديمة جدًا أو من مكان آخر. افتح الصفحة مجددًا وأعد المحاولة.",
	"refused.back":       "افتح لوحة التحكم مجددًا",
	"notfound.title":     "غير موجود",
	"notfound.body":      "لا يوجد شيء هنا، أو أنه ليس مما يحق لك رؤيته.",
	"unavailable.title":  "لا تستطيع لوحة التحكم الإجابة الآن",
	"unavailable.body":   "لم يستجب تخزين الخدمة. حاول مجددًا بعد قليل.",
	"overview.title":     "نظرة عامة",
	"overview.depth":     "عمق الطابور حسب القسم",
	"overview.partition": "القسم",
	"overview.waiting":   "في الانتظار",
	"overview.oldest":    "الأقدم (ثوانٍ)",
	"overview.hour":      "الساعة الأخيرة، دقيقةً بدقيقة",
	"overview.chart":     "الرسائل المرسلة والمؤجلة والفاشلة في كل دقيقة من الساعة الأخيرة",
	"overview.totals":    "مجاميع الساعة الأخيرة",
	"overview.failing":   "المستأجرون الذين يفشل حسابهم",
	"overview.nofailing": "لا يفشل حساب أي مستأجر.",
	"overview.scanned":   "رُوجع أول %d مستأجر.",
	"count.sent":         "مرسلة",
	"count.deferred":     "مؤجلة",
	"count.failed":       "فاشلة",
	"count.suppressed":   "محجوبة",
	"tenant.id":          "المستأجر",
	"tenant.route":       "المسار",
	"tenant.sending":     "الإرسال",
	"tenant.error":       "آخر خطأ",
	"tenant.hint":        "ما العمل",
	"tenant.circuit":     "الدائرة مفتوحة حتى %s",
	"tenants.title":      "المستأجرون",
	"tenants.search":     "معرّف المستأجر يبدأ بـ",
	"tenants.submit":     "بحث",
	"tenants.none":       "لا يطابق أي مستأجر.",
	"tenants.more":       "الصفحة التالية",
	"profile.title":      "حساب SMTP",
	"profile.none":       "لا حساب: يمر البريد عبر المُرحِّل الافتراضي.",
	"profile.provider":   "المزوّد",
	"profile.host":       "الخادم",
	"profile.email":      "العنوان",
	"profile.enabled":    "مفعّل",
	"yes":                "نعم",
	"no":                 "لا",
	"status.title":       "الإرسال",
	"status.reason":      "السبب (اختياري)",
	"status.pause":       "إيقاف الإرسال مؤقتًا",
	"status.resume":      "استئناف الإرسال",
	"status.paused":      "موقوف مؤقتًا",
	"status.active":      "نشط",
	"status.operator":    "مفتاح المشغّل وحده يستطيع إيقاف مستأجر أو استئنافه.",
	"recent.title":       "الرسائل الأخيرة",
	"recent.none":        "لا رسائل.",
	"msg.id":             "الرسالة",
	"msg.status":         "الحالة",
	"msg.created":        "قُبلت",
	"msg.sendat":         "موعد الإرسال",
	"msg.error":          "الخطأ",
	"msg.title":          "الرسالة",
	"msg.recipients":     "المستلمون",
	"msg.email":          "العنوان",
	"msg.state":          "الحالة",
	"msg.reply":          "رد الخادم",
	"msg.norecipients":   "لا محاولة بعد.",
	"msg.attempts":       "المحاولات",
	"msg.at":             "الوقت",
	"msg.code":           "الرمز",
	"msg.noattempts":     "لا محاولة بعد.",
	"msg.cancel":         "إلغاء هذه الرسالة",
	"msg.cancelled":      "أُلغيت الرسالة.",
	"msg.notcancellable": "هذه الرسالة قيد الإرسال أو انتهت: لا يمكن إلغاؤها.",
	"chart.minutesago":   "قبل %d دقيقة",
	"chart.now":          "الآن",
	"nav.webhooks":       "خطافات الويب",
	"supp.title":         "العناوين المحجوبة",
	"supp.source":        "أضافها",
	"supp.none":          "لا عنوان محجوب.",
	"supp.more":          "تظهر أول 50: يسردها كلها GET /v1/tenants/{tenant}/suppressions.",
	"supp.remove":        "إزالة",
	"rate.title":         "استهلاك الحد",
	"rate.window":        "النافذة",
	"rate.used":          "المستلمون المستهلكون / المسموح بهم",
	"rate.reset":         "يمتلئ ثانية بعد",
	"rate.minute":        "في الدقيقة",
	"rate.day":           "في اليوم",
	"supp.bounced":       "أضاف %s ارتدادٌ دائم: لا يزيله إلا المشغّل.",
	"msg.events":         "أحداث الويب هوك",
	"msg.noevents":       "لا حدث ويب هوك مسجّل عن هذه الرسالة.",
	"msg.hook":           "الويب هوك",
	"msg.delivered":      "سُلّم",
	"verify.submit":      "اختبر الاتصال",
	"verify.ok":          "الاتصال يعمل: %s، AUTH %s، %d ملّي ثانية. لم يُرسل أي بريد.",
	"verify.failed":      "فشل الاختبار: %s",
	"hooks.title":        "خطافات الويب",
	"hooks.none":         "لا خطافات ويب.",
	"hooks.name":         "الاسم",
	"hooks.url":          "العنوان",
	"hooks.events":       "الأحداث",
	"hooks.log":          "تسليمات",
	"hooks.event":        "الحدث",
	"hooks.attempt":      "المحاولة",
	"hooks.answer":       "الرد",
	"hooks.retry":        "أرسل مجددًا",
	"hooks.retried":      "الحدث في الطابور ليُرسل مجددًا.",
	"hooks.delivered":    "سُلّم",
	"hooks.notdelivered": "لم يُسلَّم",
	"hooks.gaveup":       "توقفت المحاولات",
	"hooks.nodeliveries": "لم يُرسل شيء بعد.",
}
