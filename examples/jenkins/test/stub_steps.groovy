// Runs a Jenkinsfile against stub pipeline steps and prints, one JSON object a line, each
// step it calls (name and arguments, closures shown as "{...}"), in order.
//
//   groovy stub_steps.groovy Jenkinsfile [approver]
//
// The file is compiled by the real Groovy first: a syntax error fails here (exit 1) with
// the compiler's message.  The stubs run every closure they get (all stages and all post
// conditions), `input` returns the approver, and `sh(returnStatus: true)` returns 4 for a
// run with --pause-after-canary (the planned pause) and 0 otherwise.
import groovy.json.JsonOutput

class StubPipeline {
    List<Map> calls = []
    Map env = [BUILD_NUMBER: '42', BUILD_TAG: 'jenkins-release-42', WORKSPACE: '/ws']
    Map params = [SERVICE: 'shop', VERSION: '1.5.0']
    String approver

    private static Object shown(Object arg) {
        if (arg instanceof Closure) return '{...}'
        if (arg instanceof Map) return arg.collectEntries { k, v -> [(k.toString()): shown(v)] }
        if (arg instanceof List) return arg.collect { shown(it) }
        if (arg instanceof Number || arg instanceof Boolean || arg == null) return arg
        return arg.toString()
    }

    def methodMissing(String name, Object args) {
        Object[] list = args as Object[]
        calls << [step: name, args: list.collect { shown(it) }]
        Object result = null
        if (name == 'input') {
            result = approver
        } else if (name == 'sh' && list.length == 1 && list[0] instanceof Map && list[0].returnStatus) {
            result = list[0].script.toString().contains('--pause-after-canary') ? 4 : 0
        }
        list.findAll { it instanceof Closure }.each { Closure body ->
            body.delegate = this
            body.resolveStrategy = Closure.DELEGATE_FIRST
            body.call()
        }
        return result
    }

    // bare words of the DSL (agent any, label names used as values) and environment { X = 'v' }
    def propertyMissing(String name) { return env.containsKey(name) ? env[name] : name }
    def propertyMissing(String name, Object value) { env[name] = value.toString() }
}

if (args.length < 1) {
    System.err.println('usage: groovy stub_steps.groovy Jenkinsfile [approver]')
    System.exit(2)
}
def stub = new StubPipeline(approver: args.length > 1 ? args[1] : 'alice')
def source = new File(args[0]).getText('UTF-8')
Script script
try {
    script = new GroovyShell().parse(source, 'Jenkinsfile')
} catch (org.codehaus.groovy.control.MultipleCompilationErrorsException e) {
    System.err.println(e.message)
    System.exit(1)
}
script.binding.setVariable('pipeline', { Closure body -> stub.methodMissing('pipeline', [body] as Object[]) })
script.run()
stub.calls.each { println JsonOutput.toJson(it) }
