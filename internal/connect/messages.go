package connect

import "github.com/outbound-mail/outbound/internal/lang"

// The page's words, one catalogue per locale; TestCataloguesHaveTheSameKeys
// holds them to the same keys. A provider's steps are "steps.<name>", one
// step a line, beside the provider table's servers (internal/provider):
// a provider added there without steps here gets "steps.default".

// messages are the catalogues by language, and catalogue their words.
var (
	messages  = map[string]map[string]string{"en": english, "ar": arabic}
	catalogue = lang.NewCatalogue(messages)
)

var english = map[string]string{
	"title":          "Connect your mailbox",
	"intro":          "Send your emails from your own address. Your password is stored encrypted and is never shown again.",
	"choose.legend":  "Where is your mailbox?",
	"choose.email":   "Email",
	"choose.help":    "Type your address and we suggest your provider, or choose it below.",
	"choose.missing": "Choose your provider or type your email address.",
	"provider.other": "Another server",
	"button.next":    "Next",
	"button.cancel":  "Cancel",
	"button.back":    "Choose another provider",
	"button.test":    "Test connection",
	"button.save":    "Save",
	"form.heading":   "Your %s account",
	"steps.heading":  "Before you start",

	"steps.gmail": "Turn on 2-Step Verification for your Google account (Google Account, Security).\n" +
		"Open App passwords (Google Account, Security, App passwords).\n" +
		"Create an App Password; any name will do, such as \"Mail\".\n" +
		"Copy the 16 letters Google shows and paste them into Password below.",
	"steps.google": "Turn on 2-Step Verification for your Google Workspace account; your administrator may have to allow it.\n" +
		"Open App passwords (Google Account, Security, App passwords).\n" +
		"Create an App Password; any name will do, such as \"Mail\".\n" +
		"Copy the 16 letters Google shows and paste them into Password below.",
	"steps.microsoft365": "Ask your administrator to turn on Authenticated SMTP for your mailbox.\n" +
		"If your account uses multi-factor sign-in, create an app password (My Account, Security info).\n" +
		"Enter your address and that password below.",
	"steps.outlook": "Turn on two-step verification for your Microsoft account (account.microsoft.com, Security).\n" +
		"Create an app password there (Advanced security options, App passwords).\n" +
		"Enter it as the Password below.",
	"steps.yahoo": "Open Account security in your Yahoo account.\n" +
		"Choose Generate app password and create one for \"Mail\".\n" +
		"Enter it as the Password below.",
	"steps.icloud": "Turn on two-factor authentication for your Apple Account.\n" +
		"Sign in at account.apple.com and open App-Specific Passwords.\n" +
		"Create one and enter it as the Password below; the user name is your iCloud address.",
	"steps.zoho": "Open Zoho Accounts, Security, App Passwords.\n" +
		"Generate a new password for \"Mail\".\n" +
		"Enter it as the Password below.",
	"steps.fastmail": "Open Settings, Privacy & Security, App passwords in Fastmail.\n" +
		"Create a password with access to SMTP.\n" +
		"Enter it as the Password below.",
	"steps.other": "Find your provider's SMTP settings: server, port and user name.\n" +
		"Use an app password if your provider offers one.\n" +
		"Fill in every field below.",
	"steps.default": "Create an app password in your provider's security settings.\n" +
		"Enter it as the Password below.",

	"field.sender_name":      "Sender name",
	"field.sender_name.help": "The name your recipients see, such as your business name.",
	"field.email":            "Email",
	"field.password":         "Password (App Password)",
	"field.password.help":    "It is never shown again. Leave it empty to keep the password saved before.",
	"field.username":         "SMTP user name",
	"field.username.help":    "Usually your email address.",
	"field.host":             "SMTP server",
	"field.port":             "SMTP port",
	"field.port.help":        "465 for TLS, 587 for STARTTLS.",
	"field.enabled":          "Send emails using my SMTP account",
	"field.enabled.help":     "When unticked, emails go out through the platform with replies to your address.",

	"errors.heading":           "Please correct the following:",
	"error.required":           "%s is required.",
	"error.invalid_email":      "%s is not a valid email address.",
	"error.invalid_host":       "%s is not a server name.",
	"error.out_of_range":       "%s must be a number from 1 to 65535.",
	"error.too_long":           "%s is too long.",
	"error.invalid_characters": "%s holds characters that are not allowed.",
	"error.secret_required":    "%s is needed again, because the server changed.",
	"error.invalid":            "%s is not valid.",

	"verify.ok":                 "The connection works: logged in with %s over %s.",
	"verify.failed":             "The connection test failed.",
	"verify.auth_failed":        "The server refused the user name or password. Check both; most providers need an App Password, not your usual password.",
	"verify.signin.auth_failed": "You signed in, but the mail server did not accept this app's access for sending. Your organisation may have turned off sending from apps (SMTP AUTH): ask its administrator to allow it for this mailbox, then sign in again, or use an App Password.",
	"verify.dns_failed":         "The SMTP server was not found. Check the server name.",
	"verify.connect_failed":     "The SMTP server could not be reached. Check the server and port.",
	"verify.timeout":            "The SMTP server did not answer in time. Check the server and port, then try again.",
	"verify.tls_failed":         "No secure connection could be made. Check the port: 465 uses TLS, 587 STARTTLS.",
	"verify.egress_denied":      "This server address is not allowed. Use your provider's public SMTP server.",
	"verify.other":              "The server answered with an error. Check the settings and try again.",
	"verify.details":            "The server said:",
	"verify.hint":               "Advice:",
	"attempts.left":             "Tests left on this link: %d.",

	"gone.expired.title":   "This link has expired",
	"gone.expired.body":    "Go back to the app and ask for a new link.",
	"gone.used_up.title":   "This link has been used too many times",
	"gone.used_up.body":    "Go back to the app and ask for a new link.",
	"gone.done.title":      "Your mailbox is connected",
	"gone.done.body":       "This link has done its work and opens no more.",
	"gone.not_found.title": "This link is not valid",
	"gone.not_found.body":  "Check that you opened the whole link, or ask the app for a new one.",
	"gone.back":            "Back to the app",

	"csrf.title":  "This form could not be accepted",
	"csrf.body":   "It came from an old copy of the page or from another site. Open the page again and retry.",
	"csrf.reload": "Open the page again",

	"signin.button":        "Sign in with %s",
	"signin.help":          "You sign in on %s's own page and allow this app to send mail as you. No App Password is needed.",
	"signin.or":            "Or use an App Password",
	"signin.denied.title":  "You did not allow access",
	"signin.denied.body":   "Nothing was saved. To connect your mailbox, sign in again and allow sending mail, or use an App Password.",
	"signin.state.title":   "This sign-in could not be finished",
	"signin.state.body":    "It did not come from the sign-in this page started, or it was already used. Start again from the page.",
	"signin.account.title": "You signed in with another account",
	"signin.account.body":  "You typed %s but signed in as %s. Sign in again with the account you typed, or change the address.",
	"signin.failed.title":  "The sign-in did not work",
	"signin.failed.body":   "The provider did not give this app access to send mail. Try again, or use an App Password.",
	"signin.retry":         "Try again",

	"unavailable.title": "Something went wrong",
	"unavailable.body":  "The service could not answer. Please try again in a moment.",
}

var arabic = map[string]string{
	"title":          "اربط بريدك الإلكتروني",
	"intro":          "أرسل رسائلك من عنوانك الخاص. تُحفظ كلمة المرور مشفّرة ولا تُعرض مرة أخرى.",
	"choose.legend":  "أين صندوق بريدك؟",
	"choose.email":   "البريد الإلكتروني",
	"choose.help":    "اكتب عنوانك وسنقترح مزوّد خدمتك، أو اختره من القائمة أدناه.",
	"choose.missing": "اختر مزوّد خدمتك أو اكتب عنوان بريدك الإلكتروني.",
	"provider.other": "خادم آخر",
	"button.next":    "التالي",
	"button.cancel":  "إلغاء",
	"button.back":    "اختر مزوّدًا آخر",
	"button.test":    "اختبار الاتصال",
	"button.save":    "حفظ",
	"form.heading":   "حسابك على %s",
	"steps.heading":  "قبل أن تبدأ",

	"steps.gmail": "فعّل التحقق بخطوتين في حساب Google (حساب Google، الأمان).\n" +
		"افتح كلمات مرور التطبيقات (حساب Google، الأمان، كلمات مرور التطبيقات).\n" +
		"أنشئ كلمة مرور للتطبيق بأي اسم، مثل \"Mail\".\n" +
		"انسخ الأحرف الستة عشر التي يعرضها Google والصقها في حقل كلمة المرور أدناه.",
	"steps.google": "فعّل التحقق بخطوتين في حساب Google Workspace؛ قد يلزم أن يسمح به المسؤول.\n" +
		"افتح كلمات مرور التطبيقات (حساب Google، الأمان، كلمات مرور التطبيقات).\n" +
		"أنشئ كلمة مرور للتطبيق بأي اسم، مثل \"Mail\".\n" +
		"انسخ الأحرف الستة عشر التي يعرضها Google والصقها في حقل كلمة المرور أدناه.",
	"steps.microsoft365": "اطلب من المسؤول تفعيل SMTP المصادَق عليه لصندوق بريدك.\n" +
		"إذا كان حسابك يستخدم التحقق متعدد العوامل، فأنشئ كلمة مرور للتطبيق (حسابي، معلومات الأمان).\n" +
		"أدخل عنوانك وكلمة المرور تلك أدناه.",
	"steps.outlook": "فعّل التحقق بخطوتين في حساب Microsoft (account.microsoft.com، الأمان).\n" +
		"أنشئ هناك كلمة مرور للتطبيق (خيارات الأمان المتقدمة، كلمات مرور التطبيقات).\n" +
		"أدخلها في حقل كلمة المرور أدناه.",
	"steps.yahoo": "افتح أمان الحساب في حساب Yahoo.\n" +
		"اختر إنشاء كلمة مرور للتطبيق وأنشئ واحدة باسم \"Mail\".\n" +
		"أدخلها في حقل كلمة المرور أدناه.",
	"steps.icloud": "فعّل المصادقة الثنائية لحساب Apple.\n" +
		"سجّل الدخول إلى account.apple.com وافتح كلمات المرور الخاصة بالتطبيقات.\n" +
		"أنشئ واحدة وأدخلها في حقل كلمة المرور أدناه؛ اسم المستخدم هو عنوان iCloud.",
	"steps.zoho": "افتح Zoho Accounts، الأمان، كلمات مرور التطبيقات.\n" +
		"أنشئ كلمة مرور جديدة باسم \"Mail\".\n" +
		"أدخلها في حقل كلمة المرور أدناه.",
	"steps.fastmail": "افتح الإعدادات، الخصوصية والأمان، كلمات مرور التطبيقات في Fastmail.\n" +
		"أنشئ كلمة مرور تسمح بالوصول إلى SMTP.\n" +
		"أدخلها في حقل كلمة المرور أدناه.",
	"steps.other": "اعثر على إعدادات SMTP لدى مزوّدك: الخادم والمنفذ واسم المستخدم.\n" +
		"استخدم كلمة مرور للتطبيق إن كان مزوّدك يتيحها.\n" +
		"املأ جميع الحقول أدناه.",
	"steps.default": "أنشئ كلمة مرور للتطبيق في إعدادات الأمان لدى مزوّدك.\n" +
		"أدخلها في حقل كلمة المرور أدناه.",

	"field.sender_name":      "اسم المرسل",
	"field.sender_name.help": "الاسم الذي يراه المستلمون، مثل اسم نشاطك التجاري.",
	"field.email":            "البريد الإلكتروني",
	"field.password":         "كلمة المرور (كلمة مرور التطبيق)",
	"field.password.help":    "لن تُعرض مرة أخرى. اتركها فارغة للإبقاء على كلمة المرور المحفوظة سابقًا.",
	"field.username":         "اسم مستخدم SMTP",
	"field.username.help":    "عادةً ما يكون عنوان بريدك الإلكتروني.",
	"field.host":             "خادم SMTP",
	"field.port":             "منفذ SMTP",
	"field.port.help":        "465 لـ TLS، و587 لـ STARTTLS.",
	"field.enabled":          "إرسال الرسائل باستخدام حساب SMTP الخاص بي",
	"field.enabled.help":     "عند إلغاء التحديد، تُرسل الرسائل عبر المنصة وتصل الردود إلى عنوانك.",

	"errors.heading":           "يُرجى تصحيح ما يلي:",
	"error.required":           "حقل %s مطلوب.",
	"error.invalid_email":      "%s ليس عنوان بريد إلكتروني صالحًا.",
	"error.invalid_host":       "%s ليس اسم خادم.",
	"error.out_of_range":       "يجب أن يكون %s رقمًا من 1 إلى 65535.",
	"error.too_long":           "%s طويل جدًا.",
	"error.invalid_characters": "يحتوي %s على أحرف غير مسموح بها.",
	"error.secret_required":    "يلزم إدخال %s من جديد لأن الخادم تغيّر.",
	"error.invalid":            "%s غير صالح.",

	"verify.ok":                 "الاتصال يعمل: تم تسجيل الدخول باستخدام %s عبر %s.",
	"verify.failed":             "فشل اختبار الاتصال.",
	"verify.auth_failed":        "رفض الخادم اسم المستخدم أو كلمة المرور. تحقّق منهما؛ يحتاج معظم المزوّدين إلى كلمة مرور للتطبيق وليس كلمة مرورك المعتادة.",
	"verify.signin.auth_failed": "سجّلت الدخول، لكن خادم البريد لم يقبل إذن هذا التطبيق بالإرسال. ربما أوقفت مؤسستك الإرسال من التطبيقات (SMTP AUTH): اطلب من مسؤولها السماح به لهذا الصندوق البريدي ثم سجّل الدخول مرة أخرى، أو استخدم كلمة مرور للتطبيقات.",
	"verify.dns_failed":         "لم يُعثر على خادم SMTP. تحقّق من اسم الخادم.",
	"verify.connect_failed":     "تعذّر الوصول إلى خادم SMTP. تحقّق من الخادم والمنفذ.",
	"verify.timeout":            "لم يستجب خادم SMTP في الوقت المحدد. تحقّق من الخادم والمنفذ ثم أعد المحاولة.",
	"verify.tls_failed":         "تعذّر إنشاء اتصال آمن. تحقّق من المنفذ: 465 يستخدم TLS و587 يستخدم STARTTLS.",
	"verify.egress_denied":      "عنوان هذا الخادم غير مسموح به. استخدم خادم SMTP العام لدى مزوّدك.",
	"verify.other":              "ردّ الخادم بخطأ. تحقّق من الإعدادات وأعد المحاولة.",
	"verify.details":            "ردّ الخادم:",
	"verify.hint":               "نصيحة:",
	"attempts.left":             "عدد الاختبارات المتبقية لهذا الرابط: %d.",

	"gone.expired.title":   "انتهت صلاحية هذا الرابط",
	"gone.expired.body":    "عُد إلى التطبيق واطلب رابطًا جديدًا.",
	"gone.used_up.title":   "استُخدم هذا الرابط مرات كثيرة",
	"gone.used_up.body":    "عُد إلى التطبيق واطلب رابطًا جديدًا.",
	"gone.done.title":      "تم ربط بريدك الإلكتروني",
	"gone.done.body":       "أدّى هذا الرابط مهمته ولن يُفتح بعد الآن.",
	"gone.not_found.title": "هذا الرابط غير صالح",
	"gone.not_found.body":  "تأكّد من أنك فتحت الرابط كاملًا، أو اطلب رابطًا جديدًا من التطبيق.",
	"gone.back":            "العودة إلى التطبيق",

	"csrf.title":  "تعذّر قبول هذا النموذج",
	"csrf.body":   "أُرسل من نسخة قديمة من الصفحة أو من موقع آخر. افتح الصفحة من جديد وأعد المحاولة.",
	"csrf.reload": "افتح الصفحة من جديد",

	"signin.button":        "تسجيل الدخول عبر %s",
	"signin.help":          "تسجّل الدخول في صفحة %s نفسها وتسمح لهذا التطبيق بإرسال البريد باسمك. لا حاجة إلى كلمة مرور التطبيقات.",
	"signin.or":            "أو استخدم كلمة مرور التطبيقات",
	"signin.denied.title":  "لم تسمح بالوصول",
	"signin.denied.body":   "لم يُحفظ شيء. لربط بريدك، سجّل الدخول مرة أخرى واسمح بإرسال البريد، أو استخدم كلمة مرور التطبيقات.",
	"signin.state.title":   "تعذّر إكمال تسجيل الدخول هذا",
	"signin.state.body":    "لم يأتِ من تسجيل الدخول الذي بدأته هذه الصفحة، أو استُخدم من قبل. ابدأ من جديد من الصفحة.",
	"signin.account.title": "سجّلت الدخول بحساب آخر",
	"signin.account.body":  "كتبت %s لكنك سجّلت الدخول باسم %s. سجّل الدخول مرة أخرى بالحساب الذي كتبته، أو غيّر العنوان.",
	"signin.failed.title":  "لم ينجح تسجيل الدخول",
	"signin.failed.body":   "لم يمنح المزوّد هذا التطبيق إذنًا بإرسال البريد. حاول مرة أخرى، أو استخدم كلمة مرور التطبيقات.",
	"signin.retry":         "حاول مرة أخرى",

	"unavailable.title": "حدث خطأ ما",
	"unavailable.body":  "تعذّر على الخدمة الرد. يُرجى المحاولة بعد قليل.",
}
